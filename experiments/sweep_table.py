"""The sweep table (docs/experiments.md, "`flexiq sweep`"): one row per (model, method, ratio), its columns, derived
columns and resume.

Raw columns come from one measurement each; ``speedup``, ``speedup_share`` and
``latency_us`` are derived from the cycles of the rows of the same (model, method) every
time the table is written, so a resumed sweep ends with the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import math
import os

from . import io

#: Columns of sweep.csv, in order. The first eleven are fixed (docs/experiments.md, "Stable interfaces").
COLUMNS = [
    "model", "method", "ratio", "accuracy", "cycles", "latency_us", "speedup",
    "speedup_share", "reorder_share", "agree_8bit", "kl_8bit",
    "agree_fp32",      # top-1 agreement with the FP32 model (EfficientNet-Lite: photo pool)
    "mac4_share",      # fraction of all GEMM MACs that run in 4 bits
    "reorder_cycles",  # cycles of REORDER instructions in the simulated run
    "sim_bitexact",    # simulator outputs == qmodel.run(x).codes on the checked images (1/0)
    "sim_checked",     # images checked bit for bit through the simulator
    "acc_source",      # "quant" (integer runtime) or "sim" (simulator outputs)
    "n_images",        # images behind accuracy / agree_8bit / kl_8bit
    "eval_set",        # e.g. fashion-mnist-test, imagenet-photos
    "clock_ghz",
    # 95 % bootstrap intervals over photos (ImageNet) or images (Fashion-MNIST)
    "agree_8bit_lo", "agree_8bit_hi", "kl_8bit_lo", "kl_8bit_hi", "agree_fp32_lo", "agree_fp32_hi",
    "n_photos",        # bootstrap units behind the fidelity columns
    # busy cycles per op kind in the simulated run (queues overlap: they sum past `cycles`)
    "cyc_depthwise", "cyc_pointwise", "cyc_conv", "cyc_fc", "cyc_vector", "cyc_reorder", "cyc_dma",
]
KEY = ("model", "method", "ratio")
DERIVED = ("latency_us", "speedup", "speedup_share")
INT_COLUMNS = ("cycles", "reorder_cycles", "sim_bitexact", "sim_checked", "n_images", "n_photos",
               "cyc_depthwise", "cyc_pointwise", "cyc_conv", "cyc_fc", "cyc_vector", "cyc_reorder",
               "cyc_dma")
STR_COLUMNS = ("model", "method", "acc_source", "eval_set")


def ratio_key(r) -> str:
    return f"{float(r):g}"


def row_key(row: dict) -> tuple:
    return (str(row["model"]), str(row["method"]), ratio_key(row["ratio"]))


def parse_row(raw: dict) -> dict:
    """A CSV row of strings -> typed values (empty -> None)."""
    out = {}
    for k, v in raw.items():
        if v is None or v == "":
            out[k] = None
        elif k in STR_COLUMNS:
            out[k] = v
        elif k in INT_COLUMNS:
            out[k] = int(float(v))
        else:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def speedup_share(c0: float, cr: float, c1: float) -> float:
    """(cycles at 0 - cycles at r) / (cycles at 0 - cycles at 1); nan when 0 and 1 tie."""
    den = c0 - c1
    if den == 0:
        return float("nan")
    return (c0 - cr) / den


def add_derived(rows: list[dict]) -> list[dict]:
    """Fill latency_us, speedup (vs ratio 0) and speedup_share per (model, method)."""
    ref: dict = {}
    for r in rows:
        if r.get("cycles") is None:
            continue
        key = (r["model"], r["method"])
        if float(r["ratio"]) == 0.0:
            ref.setdefault(key, {})[0] = r["cycles"]
        if float(r["ratio"]) == 1.0:
            ref.setdefault(key, {})[1] = r["cycles"]
    out = []
    for r in rows:
        r = dict(r)
        cyc = r.get("cycles")
        clock = r.get("clock_ghz") or 1.0
        if cyc is not None:
            r["latency_us"] = cyc / (clock * 1e3)
            refs = ref.get((r["model"], r["method"]), {})
            c0, c1 = refs.get(0), refs.get(1)
            r["speedup"] = c0 / cyc if c0 is not None and cyc else None
            r["speedup_share"] = (speedup_share(c0, cyc, c1)
                                  if c0 is not None and c1 is not None else None)
        out.append(r)
    return out


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["model"], r["method"], float(r["ratio"])))


class SweepTable:
    """DIR/sweep.csv + DIR/sweep.json, rewritten atomically after every added row."""

    def __init__(self, out_dir, meta: dict | None = None):
        self.dir = os.fspath(out_dir)
        self.csv_path = os.path.join(self.dir, "sweep.csv")
        self.json_path = os.path.join(self.dir, "sweep.json")
        self.meta = dict(meta or {})
        self.rows: dict[tuple, dict] = {}

    @classmethod
    def load(cls, out_dir, meta: dict | None = None) -> SweepTable:
        """Earlier rows, verified: a CSV row counts as done only if it has every column,
        parses, and equals its twin in sweep.json (written with it). Others are dropped
        (``dropped`` counts them) and measured again."""
        t = cls(out_dir, meta)
        try:
            old = io.read_json(t.json_path, {}) or {}
        except (ValueError, OSError):
            old = {}
        twins = {}
        for jr in old.get("rows", []) if isinstance(old, dict) else []:
            try:
                twins[row_key(jr)] = jr
            except (KeyError, TypeError, ValueError):
                continue
        t.dropped = 0
        for raw in io.read_csv(t.csv_path):
            row = _verified(raw, twins)
            if row is None:
                t.dropped += 1
                continue
            t.rows[row_key(row)] = row
        t.previous_meta = old.get("meta", {}) if isinstance(old, dict) else {}
        return t

    def done(self, model, method, ratio) -> bool:
        return (str(model), str(method), ratio_key(ratio)) in self.rows

    def get(self, model, method, ratio) -> dict | None:
        return self.rows.get((str(model), str(method), ratio_key(ratio)))

    def add(self, row: dict, *, write: bool = True) -> None:
        missing = [k for k in KEY if row.get(k) is None]
        if missing:
            raise ValueError(f"sweep row lacks {missing}")
        row = dict(row)
        row["ratio"] = float(row["ratio"])
        self.rows[row_key(row)] = row
        if write:
            self.write()

    def table(self) -> list[dict]:
        return sort_rows(add_derived(list(self.rows.values())))

    def write(self) -> None:
        rows = self.table()
        io.write_csv(self.csv_path, rows, COLUMNS)
        io.write_json(self.json_path, {"columns": COLUMNS, "meta": self.meta,
                                       "rows": [{c: _json_val(r.get(c)) for c in COLUMNS}
                                                for r in rows]})


def _verified(raw: dict, twins: dict) -> dict | None:
    """A parsed CSV row if it is complete and agrees with sweep.json, else None."""
    if None in raw or any(raw.get(c) is None for c in COLUMNS):
        return None  # a short (truncated) or overlong row
    try:
        row = parse_row(raw)
        key = row_key(row)
    except (KeyError, TypeError, ValueError):
        return None
    # a measured row has accuracy, or, for unlabelled data (a user's image folder), at least
    # agree_8bit; a cell emptied by a broken write no longer matches its JSON twin
    if (not row.get("model") or not row.get("method")
            or (row.get("accuracy") is None and row.get("agree_8bit") is None)):
        return None
    twin = twins.get(key)
    if twin is None:
        return None
    for c in COLUMNS:
        if c in DERIVED:
            continue
        a, b = row.get(c), _json_val(twin.get(c))
        if isinstance(a, float) and math.isnan(a):
            a = None
        if a != b and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                           and math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)):
            return None
    return row


def _json_val(v):
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def format_table(rows: list[dict], columns=("model", "method", "ratio", "accuracy", "agree_8bit",
                                            "kl_8bit", "cycles", "latency_us", "speedup",
                                            "speedup_share", "reorder_share", "mac4_share",
                                            "sim_bitexact")) -> str:
    """A fixed-width text rendering (also valid Markdown) of selected columns."""
    def cell(v, c):
        if v is None:
            return "-"
        if c in ("accuracy", "agree_8bit", "agree_fp32", "mac4_share", "speedup_share",
                 "reorder_share"):
            return f"{100 * float(v):.2f}%" if not (isinstance(v, float) and math.isnan(v)) else "nan"
        if c == "kl_8bit":
            return f"{float(v):.4f}"
        if c in ("latency_us",):
            return f"{float(v):.1f}"
        if c == "speedup":
            return f"{float(v):.3f}x"
        if c == "ratio":
            return f"{float(v):g}"
        return str(v)

    body = [[cell(r.get(c), c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(b, widths)) + " |" for b in body]
    return "\n".join(lines)


BREAKDOWN_COLUMNS = ("cyc_depthwise", "cyc_pointwise", "cyc_conv", "cyc_fc", "cyc_vector",
                     "cyc_reorder", "cyc_dma")


def format_fidelity(rows: list[dict]) -> str:
    """Markdown: the fidelity metrics with their 95 % bootstrap intervals."""
    from .methods import label

    def pct(r, c):
        v, lo, hi = r.get(c), r.get(f"{c}_lo"), r.get(f"{c}_hi")
        if v is None:
            return "-"
        ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
        return f"{100 * v:.1f} %{ci}"

    def kl(r):
        v, lo, hi = r.get("kl_8bit"), r.get("kl_8bit_lo"), r.get("kl_8bit_hi")
        if v is None:
            return "-"
        return f"{v:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")

    lines = ["| method | ratio | 4-bit MACs | top-1 acc | agree 8-bit [95 % CI] | agree FP32 [95 % CI] "
             "| KL to 8-bit [95 % CI] | photos / views |", "|---|---:|---:|---:|---|---|---|---|"]
    for r in rows:
        acc = "-" if r.get("accuracy") is None else f"{100 * r['accuracy']:.0f} %"
        mac = "-" if r.get("mac4_share") is None else f"{100 * r['mac4_share']:.0f} %"
        lines.append(f"| {label(r['method'])} | {float(r['ratio']):g} | {mac} | {acc} | "
                     f"{pct(r, 'agree_8bit')} | {pct(r, 'agree_fp32')} | {kl(r)} | "
                     f"{r.get('n_photos') or '-'} / {r.get('n_images') or '-'} |")
    return "\n".join(lines)


def format_breakdown(rows: list[dict]) -> str:
    """Markdown: simulated cycles per op kind (busy cycles of the unit doing it, and their
    share of the run's total cycles; units overlap, so shares add up to more than 100 %)."""
    from .methods import label

    kinds = [c[4:] for c in BREAKDOWN_COLUMNS]
    lines = ["| method | ratio | cycles | speedup | " + " | ".join(kinds) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(kinds)]
    for r in rows:
        cyc = r.get("cycles")
        if cyc is None or r.get("cyc_depthwise") is None:
            continue
        sp = r.get("speedup")
        cells = [f"{int(r[c]):,} ({100 * r[c] / cyc:.0f} %)" for c in BREAKDOWN_COLUMNS]
        lines.append(f"| {label(r['method'])} | {float(r['ratio']):g} | {int(cyc):,} | "
                     f"{'-' if sp is None else f'{sp:.3f}x'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(model: str, rows: list[dict]) -> str:
    """The sweep summary: the main table, fidelity with intervals, cycles per op kind."""
    parts = [f"# Sweep summary: {model}", "", format_table(rows), "",
             "## Fidelity (95 % bootstrap intervals over photos)", "", format_fidelity(rows)]
    bd = format_breakdown(rows)
    if bd.count("\n") > 1:
        parts += ["", "## Simulated cycles per op kind (batch 1)", "",
                  "Busy cycles of the unit doing each kind of work, and their share of the run's "
                  "cycles (the load/compute/vector/store queues overlap, so shares add past 100 %). "
                  "depthwise / pointwise (1x1) / conv (other dense) / fc: PE-array (compute queue) "
                  "cycles of those GEMMs; vector: vector unit without REORDER; dma: load + store queues.",
                  "", bd]
    return "\n".join(parts) + "\n"
