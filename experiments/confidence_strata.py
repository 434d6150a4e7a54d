"""Agreement with the 8-bit model, split by how confident the 8-bit model is.

The photo pool's evaluation views are ordinary photographs, many of no ImageNet class, so
the 8-bit model is often unsure of its own top-1 (on EfficientNet-Lite0 half of the views
have a top-1 probability below 0.4). A small perturbation flips such a top-1 without the
model being any worse. This study measures top-1 agreement with the 8-bit model within
bins of the 8-bit model's top-1 probability, each with a 95 % bootstrap interval over
photos, for saved selections of a finished sweep (the same calibration and selection
files the sweep used, so its rows are reproduced). FP32 against 8-bit is the first row.

    python -m experiments.confidence_strata efficientnet_lite0 --sweep results/lite/lite0 \\
        --methods evolutionary,greedy,range,hawq --ratios 0.5,1 -o results/lite/strata.md

Each (method, ratio) result is saved as it finishes (``OUT.json``), so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from tqdm.auto import tqdm

from . import io, metrics
from . import methods as M
from .sweep import _float_logits, _fs, eval_batch, parse_ratios

DEFAULT_BINS = (0.0, 0.3, 0.5, 0.8, 1.0)


def softmax_top(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 class, its probability) of each row."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p.argmax(axis=1), p.max(axis=1)


def bin_masks(conf, bins) -> list[np.ndarray]:
    """One boolean mask per bin [lo, hi) of ``conf``; the last bin includes its ``hi``."""
    conf = np.asarray(conf, dtype=np.float64)
    n = len(bins) - 1
    return [(conf >= lo) & ((conf <= hi) if i == n - 1 else (conf < hi))
            for i, (lo, hi) in enumerate(zip(bins[:-1], bins[1:]))]


def strata(top_ref, conf_ref, top, photo, bins=DEFAULT_BINS, seed: int = 0) -> list[dict]:
    """Per confidence bin [lo, hi): views, agreement of ``top`` with ``top_ref`` and its
    photo-bootstrap interval; the last bin includes ``hi``. A last entry covers all views."""
    same = (np.asarray(top) == np.asarray(top_ref)).astype(np.float64)
    out = []
    for (lo, hi), m in zip(zip(bins[:-1], bins[1:]), bin_masks(conf_ref, bins)):
        lo_ci, hi_ci = metrics.bootstrap_ci(same[m], np.asarray(photo)[m], seed=seed)
        out.append({"bin": [lo, hi], "views": int(m.sum()),
                    "agree": float(same[m].mean()) if m.any() else float("nan"),
                    "lo": lo_ci, "hi": hi_ci})
    lo_ci, hi_ci = metrics.bootstrap_ci(same, photo, seed=seed)
    out.append({"bin": "all", "views": int(len(same)), "agree": float(same.mean()),
                "lo": lo_ci, "hi": hi_ci})
    return out


def _logits(qm, x, batch, desc) -> np.ndarray:
    batch = eval_batch(batch, x)
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(x), batch), desc=desc, leave=False, unit="batch"):
            out.append(np.asarray(qm(x[i:i + batch]), dtype=np.float64))
    return np.concatenate(out)


def _cell(s: dict) -> str:
    if not s["views"]:
        return "-"
    return f"{100 * s['agree']:.1f} % [{100 * s['lo']:.1f}, {100 * s['hi']:.1f}]"


def table(model: str, bins, share8: dict, rows: dict) -> str:
    head = [f"[{lo:g}, {hi:g}{']' if i == len(bins) - 2 else ')'}"
            for i, (lo, hi) in enumerate(zip(bins[:-1], bins[1:]))]
    lines = [f"# Agreement with the 8-bit model by the 8-bit model's confidence: {model}", "",
             "Top-1 agreement with the 8-bit model on the photo pool's evaluation views, within "
             "bins of the 8-bit model's top-1 probability; 95 % bootstrap intervals over photos. "
             "Made by `python -m experiments.confidence_strata` from the sweep's saved "
             "selections.", "",
             "| method | ratio | " + " | ".join(f"p8 in {h}" for h in head) + " | all views |",
             "|---|---:|" + "---|" * (len(head) + 1),
             "| views per bin | | " + " | ".join(str(v) for v in share8["views"]) +
             f" | {sum(share8['views'])} |"]
    for key, s in rows.items():
        method, ratio = key.split("@")
        lines.append(f"| {method} | {ratio} | " + " | ".join(_cell(c) for c in s) + " |")
    return "\n".join(lines) + "\n"


def _fail(msg: str):
    print(f"confidence_strata: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> int:
    from models.datasets.photo_pool import EVAL_VIEWS, photo_views

    from .data import calibration_batches
    from .model_ref import load_registry_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--sweep", required=True, help="finished sweep directory (its selections/)")
    ap.add_argument("--methods", default="evolutionary")
    ap.add_argument("--ratios", default="0.5,1")
    ap.add_argument("--bins", default=",".join(f"{b:g}" for b in DEFAULT_BINS))
    ap.add_argument("--calib-images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", required=True, help="markdown table (OUT.json keeps rows)")
    a = ap.parse_args(argv)
    try:
        bins = tuple(float(b) for b in a.bins.split(","))
    except ValueError:
        _fail(f"--bins: numbers separated by commas, got {a.bins!r}")
    if len(bins) < 2 or list(bins) != sorted(bins) or bins[0] < 0 or bins[-1] > 1:
        _fail(f"--bins: at least two increasing probabilities in [0, 1], got {a.bins!r}")
    try:
        ratios = parse_ratios(a.ratios)
        names = M.validate([m.strip() for m in a.methods.split(",") if m.strip()])
    except Exception as exc:  # a FlexiQError or ValueError naming the bad value
        _fail(f"{exc}")
    sel_dir = os.path.join(a.sweep, "selections")
    for m in names:
        path = os.path.join(sel_dir, f"{a.model}__{_fs(m)}.json")
        if M.split(m)[0] not in M.ALL_OR_NOTHING and not os.path.exists(path):
            _fail(f"--methods: {m} has no saved selection {path}: run the sweep first")
    torch.set_num_threads(a.threads)
    state_path = a.out + ".json"
    state = {}
    if os.path.exists(state_path):
        try:
            with open(state_path, encoding="utf-8") as f:
                state = json.load(f)
            if not isinstance(state, dict) or not isinstance(state.get("rows", {}), dict):
                raise ValueError("not a rows object")
        except (OSError, ValueError) as exc:
            _fail(f"{state_path}: not a saved state of this study ({exc}); remove it to start over")
    if state.get("bins", list(bins)) != list(bins):
        _fail(f"{state_path} holds other bins: remove it or give --bins {state['bins']}")
    state["bins"] = list(bins)
    rows = state.setdefault("rows", {})

    model = load_registry_model(a.model)
    calib = calibration_batches(a.model, a.calib_images, seed=a.seed)
    pool = photo_views(a.model, "eval", views=EVAL_VIEWS, seed=a.seed)
    all_ratios = sorted(set(ratios) | {0.0})
    qcache: dict = {}  # one calibration, copied for every method
    ref = M.prepare_qmodel("uniform_int4", model, calib, all_ratios, seed=a.seed, cache=qcache)
    ref.set_ratio(0.0)
    l8 = _logits(ref, pool.x, a.batch, "8-bit")
    top8, conf8 = softmax_top(l8)
    state["views"] = [int(m.sum()) for m in bin_masks(conf8, bins)]
    if "fp32@-" not in rows:
        with torch.no_grad():
            fp = _float_logits(ref, pool.x, a.batch)
        rows["fp32@-"] = strata(top8, conf8, fp.argmax(1), pool.photo, bins, a.seed)
        io.write_json(state_path, state)
    todo = [(m, r) for m in names for r in ratios if f"{m}@{r:g}" not in rows]
    for m in tqdm(sorted({m for m, _ in todo}, key=names.index), desc="methods", unit="method"):
        qm = M.prepare_qmodel(m, model, calib, all_ratios, seed=a.seed, cache=qcache,
                              selection_path=os.path.join(sel_dir, f"{a.model}__{_fs(m)}.json"))
        for r in [r for mm, r in todo if mm == m]:
            qm.set_ratio(r)
            top = _logits(qm, pool.x, a.batch, f"{m} @ {r:g}").argmax(1)
            rows[f"{m}@{r:g}"] = strata(top8, conf8, top, pool.photo, bins, a.seed)
            io.write_json(state_path, state)
    io.write_text(a.out, table(a.model, bins, {"views": state["views"]}, rows))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
