"""PNG figures (matplotlib, Agg backend): accuracy/cycles trade-off, serving, paper cycles."""

from __future__ import annotations

import math
import os

import numpy as np

from . import io
from .sweep_table import parse_row

# label, colour, marker, line style per method (unknown methods get the default cycle)
STYLE = {
    "uniform_int4": ("naive MSB at 100 %", "black", "X", ""),
    "int4_ptq": ("uniform INT4 PTQ (from FP32)", "dimgray", "P", ""),
    "naive_msb": ("naive MSB extraction", "tab:gray", "v", ":"),
    "hawq": ("layer-wise (HAWQ-style)", "tab:brown", "s", "--"),
    "range": ("FlexiQ range priority", "tab:cyan", "o", "-"),
    "random": ("FlexiQ random", "tab:olive", "d", "-"),
    "greedy": ("FlexiQ greedy", "tab:orange", "^", "-"),
    "evolutionary": ("FlexiQ evolutionary", "tab:red", "*", "-"),
}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def method_style(method: str):
    base, ft = (method[:-3], True) if method.endswith("+ft") else (method, False)
    label, color, marker, ls = STYLE.get(base, (base, None, "o", "-"))
    if ft:
        label += " + finetune"
        ls = "-." if ls else ""
    return label, color, marker, ls


def _f(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def plot_sweep(rows: list[dict], out_dir, *, prefix: str = "tradeoff") -> list[str]:
    """One PNG per model: accuracy vs cycles (left) and agreement with 8-bit vs cycles (right),
    one curve per method, ratio labels on the points. Returns the written paths."""
    plt = _plt()
    rows = [parse_row(r) if isinstance(r.get("ratio"), str) else r for r in rows]
    paths = []
    for model in sorted({r["model"] for r in rows}):
        mrows = [r for r in rows if r["model"] == model and r.get("cycles") is not None]
        if not mrows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        panels = [("accuracy", "top-1 accuracy (%)"), ("agree_8bit", "top-1 agreement with 8-bit (%)")]
        eval_set = next((r.get("eval_set") for r in mrows if r.get("eval_set")), "")
        big = max(_f(r["cycles"]) for r in mrows) >= 5e6
        unit, uname = (1e6, "millions") if big else (1e3, "thousands")
        for ax, (col, ylabel) in zip(axes, panels):
            for method in sorted({r["method"] for r in mrows}, key=_method_rank):
                pts = sorted((r for r in mrows if r["method"] == method), key=lambda r: r["ratio"])
                x = np.array([_f(r["cycles"]) for r in pts]) / unit
                y = np.array([_f(r.get(col)) for r in pts]) * 100
                if np.all(np.isnan(y)):
                    continue
                label, color, marker, ls = method_style(method)
                ax.plot(x, y, linestyle=ls or "none", marker=marker, color=color, label=label,
                        markersize=9 if marker in "*X" else 6)
                if method in ("evolutionary", "range", "uniform_int4", "int4_ptq"):
                    for xi, yi, r in zip(x, y, pts):
                        ax.annotate(f"{100 * r['ratio']:g}%", (xi, yi), textcoords="offset points",
                                    xytext=(4, 4), fontsize=7, color=color)
            ax.set_xlabel(f"simulated cycles per image ({uname}, batch 1)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            clock = _f(mrows[0].get("clock_ghz")) or 1.0
            to_us = unit / (clock * 1e3)  # x units -> microseconds
            sec = ax.secondary_xaxis("top", functions=(lambda c, f=to_us: c * f,
                                                       lambda us, f=to_us: us / f))
            sec.set_xlabel(f"latency at {clock:g} GHz (µs)")
        axes[0].legend(fontsize=8, loc="best")
        title = f"{model}: accuracy vs NPU cycles per 4-bit ratio"
        fig.suptitle(title + (f" ({eval_set})" if eval_set else ""), fontsize=11)
        fig.tight_layout()
        path = os.path.join(os.fspath(out_dir), f"{prefix}_{model}.png")
        io.save_figure(fig, path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


def _method_rank(m: str):
    base = m[:-3] if m.endswith("+ft") else m
    keys = list(STYLE)
    return (keys.index(base) if base in keys else len(keys), m)


def plot_serving(study: dict, path, *, window: int = 50) -> str:
    """Per trace: arrival rate and queue, the adaptive ratio, and latency over time."""
    plt = _plt()
    traces = list(study["results"])
    fig, axes = plt.subplots(3, len(traces), figsize=(6.5 * len(traces), 8.5), squeeze=False,
                             sharex="col")
    colors = {"int8": "tab:blue", "int4_100": "tab:green", "adaptive": "tab:red"}
    for j, kind in enumerate(traces):
        res = study["results"][kind]
        runs = res["runs"]
        any_run = next(iter(runs.values()))
        t_end = float(any_run.arrival.max()) if len(any_run.arrival) else 1.0
        grid = np.linspace(0, t_end, 400)
        cap = study["profile"]["int8_capacity_per_s"]
        ax = axes[0][j]
        ax.plot(grid, np.asarray(res["rate_fn"](grid)) / cap, color="k", label="arrival rate / INT8 capacity")
        ax.set_ylabel("load (x INT8 capacity)")
        ax.set_title(f"{kind} arrivals")
        ax2 = ax.twinx()
        for name, r in runs.items():
            tl = np.array(r.timeline)
            if len(tl):
                ax2.plot(tl[:, 0], tl[:, 1], color=colors.get(name), alpha=0.5, lw=0.8, label=f"queue ({name})")
        ax2.set_ylabel("queue length")
        ax2.legend(fontsize=7, loc="upper right")
        ax = axes[1][j]
        tl = np.array(runs["adaptive"].timeline)
        if len(tl):
            ax.step(tl[:, 0], tl[:, 2] * 100, where="post", color=colors["adaptive"])
        ax.set_ylabel("adaptive 4-bit ratio (%)")
        ax.set_ylim(-5, 105)
        ax = axes[2][j]
        for name, r in runs.items():
            lat = r.latency * 1e3
            k = max(1, min(window, len(lat)))
            smooth = np.convolve(lat, np.ones(k) / k, mode="valid") if len(lat) else lat
            s = r.summary()
            ax.plot(r.arrival[k - 1:], smooth, color=colors.get(name), lw=1,
                    label=f"{name}: median {s['median_ms']:.3g} ms, P90 {s['p90_ms']:.3g} ms, "
                          f"acc {100 * s['mean_accuracy']:.2f}%")
        ax.set_yscale("log")
        ax.set_ylabel(f"latency (ms, mean of {window})")
        ax.set_xlabel("time (s)")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Serving study: {study['profile']['source']}", fontsize=10)
    fig.tight_layout()
    io.save_figure(fig, path, dpi=110)
    plt.close(fig)
    return os.fspath(path)


def plot_paper_cycles(rows: list[dict], path) -> str:
    """Cycles per ratio (normalised to 8-bit) for each paper-scale model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for model in sorted({r["model"] for r in rows}):
        pts = sorted((r for r in rows if r["model"] == model), key=lambda r: float(r["ratio"]))
        x = [100 * float(r["ratio"]) for r in pts]
        c = np.array([float(r["cycles"]) for r in pts])
        axes[0].plot(x, c / 1e6, marker="o", label=model)
        axes[1].plot(x, c[0] / c if x and x[0] == 0 else c / c.max(), marker="o", label=model)
    axes[0].set_ylabel("cycles per image (millions, log scale)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("speedup over 8-bit")
    for ax in axes:
        ax.set_xlabel("4-bit ratio (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle("Paper-scale models at 224x224 (random weights): simulated cycles per 4-bit ratio")
    fig.tight_layout()
    io.save_figure(fig, path, dpi=120)
    plt.close(fig)
    return os.fspath(path)
