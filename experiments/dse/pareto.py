"""Pareto fronts of the DSE table: latency against the area proxy, one front per ratio.

The area proxy of a configuration is ``pe_count / 1024 + sram_kib / 1024`` (thousands of
PEs plus MiB of SRAM; the table keeps both parts), a documented stand-in for silicon area
(docs/dse.md), not a layout estimate.
"""

from __future__ import annotations


def area(row: dict) -> float:
    return row["pe_count"] / 1024 + row["sram_kib"] / 1024


def front(points):
    """Indices of the points (x, y) not dominated by another (smaller or equal in both,
    smaller in one), sorted by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    out, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            out.append(i)
            best = points[i][1]
    return out


def pareto_rows(rows: list) -> list:
    """The valid rows on the front of their (model, ratio)."""
    out = []
    groups = {}
    for r in rows:
        if r.get("status") == "ok":
            groups.setdefault((r["model"], float(r["ratio"])), []).append(r)
    for key in sorted(groups):
        sel = groups[key]
        out += [sel[i] for i in front([(area(r), r["latency_us"]) for r in sel])]
    return out


def plot(rows: list, path, *, model: str | None = None) -> str:
    """Scatter of every valid point and the front per ratio; the default NPU marked."""
    from experiments.plotting import _plt

    plt = _plt()
    ok = [r for r in rows if r.get("status") == "ok" and (model is None or r["model"] == model)]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ratios = sorted({float(r["ratio"]) for r in ok})
    cmap = plt.get_cmap("viridis")
    for i, q in enumerate(ratios):
        sel = [r for r in ok if float(r["ratio"]) == q]
        pts = [(area(r), r["latency_us"]) for r in sel]
        color = cmap(i / max(1, len(ratios) - 1))
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.35, color=color)
        f = [pts[j] for j in front(pts)]
        ax.step([p[0] for p in f], [p[1] for p in f], where="post", color=color,
                label=f"4-bit ratio {q:g}")
        d = [r for r in sel if r.get("is_default")]
        if d:
            ax.scatter([area(d[0])], [d[0]["latency_us"]], marker="*", s=160, color=color,
                       edgecolors="black", zorder=5,
                       label="default NPU" if i == len(ratios) - 1 else None)
    ax.set_xlabel("area proxy: PEs / 1024 + SRAM MiB")
    ax.set_ylabel("latency (us)")
    ax.set_title(f"design space{': ' + model if model else ''}")
    ax.grid(True, alpha=0.3)
    if ratios:
        ax.legend(fontsize=8)
    from experiments.io import save_figure

    save_figure(fig, path)
    plt.close(fig)
    return str(path)
