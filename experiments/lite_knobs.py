"""Fidelity of one selection at one ratio under the co-design knobs, on the photo pool.

Starts from a finished sweep directory (``--base``, e.g. results/lite/lite0, holding the
default rows and the selection of ``--method``) and measures each variant with the sweep's
own code (experiments/sweep.py) in ``OUT/<variant>/``: same calibration photos, same
evaluation photos and views, same 8-bit reference (its cached logits are copied from the
base, so every agreement is against the same 8-bit model), same bootstrap intervals.

Variants (``--variants``, comma-separated):

* ``g32``: G = 32 on every layer (``QuantConfig.group_size``); its own selection search,
  since the groups differ.
* ``weight_shift``: one shift per weight (``weight_shift="weight"``); the base selection.
* ``dynamic``: per-image activation shifts (``dynamic``); the base selection, simulated like
  every variant (the producer of each 4-bit input OR-reduces per group as it writes).
* ``weight_shift_ft``: per-weight shifts, then finetuning (``<method>+ft``) from the base
  selection, with the per-weight lowering in the training forward: the two knobs together.
* ``weight_shift_dynamic``, ``weight_shift_dynamic_ft``: per-weight shifts and dynamic
  extraction together, then (``_ft``) finetuning; the base selection.
* ``fitness75``: the selection searched again with a fitness batch of all 75
  calibration photos (the default takes 62).
* ``naive``: naive (top-4-bit) extraction; the base selection (for the Table 7 analogue,
  with ``--method random``).

``--table7 RATIO`` also writes ``OUT/table7_<model>.md``, the paper's Table 7 rows at that
ratio from the base sweep (random, greedy, evolutionary, evolutionary+ft) and the ``naive``
(random) and ``dynamic`` (evolutionary) variants.

Then writes ``OUT/fidelity_knobs.md``: per variant and ratio, 4-bit MAC share, agreement
with the 8-bit model [95 % CI], KL, top-1 on the labelled photos, simulated cycles and
whether the simulator matched the integer runtime, next to the base rows of ``--method``
and ``--method+ft`` when the base sweep has them.

    python -m experiments.lite_knobs --base results/lite/lite0 --out results/lite/knobs
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from experiments.io import write_text
from numeric.ratio import same_ratio
from quant.errors import ConfigError, FlexiQError

VARIANTS = {
    "g32": ("G = 32 on every layer (own search)", {"quant_base": {"group_size": 32}}),
    "weight_shift": ("per-weight shifts (same selection)",
                     {"quant_base": {"weight_shift": "weight"}, "reuse": True}),
    "dynamic": ("dynamic extraction (same selection)",
                {"quant_base": {"dynamic": True}, "reuse": True}),
    "fitness75": ("fitness batch 75 photos (new search)", {"search": {"fitness_batch": 75}}),
    "weight_shift_search": ("per-weight shifts (own search)",
                            {"quant_base": {"weight_shift": "weight"}}),
    "weight_shift_ft": ("per-weight shifts + finetuning (same selection)",
                        {"quant_base": {"weight_shift": "weight"}, "reuse": True, "ft": True}),
    "weight_shift_dynamic": ("per-weight shifts + dynamic extraction (same selection)",
                             {"quant_base": {"weight_shift": "weight", "dynamic": True},
                              "reuse": True}),
    "weight_shift_dynamic_ft": ("per-weight shifts + dynamic extraction + finetuning "
                                "(same selection)",
                                {"quant_base": {"weight_shift": "weight", "dynamic": True},
                                 "reuse": True, "ft": True}),
    "naive": ("naive (top-4-bit) extraction (same selection)",
              {"quant_base": {"extraction": "naive"}, "reuse": True}),
}

#: Table 7 analogue: (row, directory key or None for the base sweep, method, variant key)
TABLE7 = [("8-bit", None, "evolutionary", "ratio0"),
          ("random + naive extraction", "naive", "random", None),
          ("random + effective extraction", None, "random", None),
          ("fast greedy", None, "greedy", None),
          ("fast evolutionary", None, "evolutionary", None),
          ("+ dynamic extraction", "dynamic", "evolutionary", None),
          ("+ finetuning (distillation, without dynamic extraction)", None, "evolutionary+ft",
           None)]


def _copy(src, dst):
    if os.path.exists(src) and not os.path.exists(dst):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)


def variant_method(key, method) -> str:
    """The sweep method a variant measures: ``method``, or ``method+ft`` for a finetuning one."""
    return f"{method}+ft" if VARIANTS[key][1].get("ft") else method


def run_variant(model, method, base, out, key, opts_base, *, net=None, **extra):
    """Measure variant ``key`` of ``method`` into ``OUT/key``; ``extra``: more SweepOptions
    fields (tests: synthetic data, a small limit); ``net``: the float model to use."""
    from experiments.sweep import SweepOptions, _fs, run_sweep

    _label, spec = VARIANTS[key]
    d = os.path.join(out, key)
    run_method = variant_method(key, method)
    _copy(os.path.join(base, "cache", f"{model}_refs.npz"),
          os.path.join(d, "cache", f"{model}_refs.npz"))
    if spec.get("reuse"):  # the base selection, under the name the variant's method reads
        _copy(os.path.join(base, "selections", f"{model}__{method}.json"),
              os.path.join(d, "selections", f"{model}__{_fs(run_method)}.json"))
    kw = dict(methods=[run_method], ratios=opts_base["ratios"], batch=opts_base["batch"],
              check_images=1,
              quant_base=spec.get("quant_base", {}), search=spec.get("search", {}))
    kw.update(extra)
    t0 = time.time()
    table = run_sweep(model, d, SweepOptions(**kw), model=net)
    print(f"[knobs] {key}: {time.time() - t0:.0f} s")
    return table


def _rows(directory, model, methods):
    from experiments.sweep_table import SweepTable

    if not os.path.exists(os.path.join(directory, "sweep.csv")):
        return []
    t = SweepTable.load(directory)
    return [r for k, r in sorted(t.rows.items()) if k[0] == model and k[1] in methods]


def _ft_label(label, directory, model, method) -> str:
    """``label`` for the ``method+ft`` rows of ``directory``, saying so when finetuning
    started from another selection file than ``method``'s own."""
    import filecmp

    own = os.path.join(directory, "selections", f"{model}__{method}.json")
    ft = os.path.join(directory, "selections", f"{model}__{method}_ft.json")
    if os.path.exists(own) and os.path.exists(ft) and filecmp.cmp(own, ft, shallow=False):
        return label
    return f"{label} - finetuned from another selection (`selections/{model}__{method}_ft.json`)"


def _f(v, fmt):
    return "" if v in (None, "") else format(float(v), fmt)


def write_table(model, method, base, out, keys, ratios):
    lines = [f"# Co-design knobs on {model}: fidelity and simulated cycles", "",
             f"Selection method `{method}`; agreement with the 8-bit model on the evaluation "
             "photos (95 % bootstrap interval over photos); top-1 on the labelled photos; "
             "cycles: simulated at batch 1 on one image; `bit-exact`: simulator output equal "
             "to the integer runtime's on the checked image (`-`: not simulated).", "",
             "| variant | ratio | 4-bit MACs | agree 8-bit [95 % CI] | KL to 8-bit | top-1 | "
             "cycles | bit-exact | photos / views |",
             "|---|---:|---:|---|---:|---:|---:|---|---|"]
    groups = [("default (G 64, one shift per group, static)", _rows(base, model, [method])),
              (_ft_label("+ finetuning (distillation on the calibration photos)", base, model,
                         method), _rows(base, model, [f"{method}+ft"]))]
    groups += [(VARIANTS[k][0], _rows(os.path.join(out, k), model, [variant_method(k, method)]))
               for k in keys]
    for label, rows in groups:
        for r in rows:
            if float(r["ratio"]) not in ratios:
                continue
            ci, acc, cyc, be = _cells(r)
            lines.append(f"| {label} | {float(r['ratio']):g} | {100 * float(r['mac4_share']):.0f} % | "
                         f"{ci} | {_f(r['kl_8bit'], '.3f')} | {acc} | {cyc} | {be} | "
                         f"{r['n_photos']} / {r['n_images']} |")
    path = os.path.join(out, "fidelity_knobs.md")
    write_text(path, "\n".join(lines) + "\n")
    print(f"[knobs] wrote {path}")


def _cells(r) -> tuple:
    """A sweep row's agreement [CI], top-1, cycles and bit-exact cells, as the tables show them."""
    ci = f"{100 * float(r['agree_8bit']):.1f} % [{100 * float(r['agree_8bit_lo']):.1f}, " \
         f"{100 * float(r['agree_8bit_hi']):.1f}]"
    acc = _f(r.get("accuracy"), ".0%").replace("%", " %")
    cyc = f"{int(float(r['cycles'])):,}" if r.get("cycles") not in (None, "") else "-"
    be = {1: "yes", 0: "NO"}.get(int(float(r["sim_bitexact"])), "-") \
        if r.get("sim_bitexact") not in (None, "") else "-"
    return ci, acc, cyc, be


def _find(rows, ratio):
    for r in rows:
        if same_ratio(r["ratio"], ratio):
            return r
    return None


def write_table7(model, base, out, ratio):
    lines = [f"# Table 7 analogue: {model} at {ratio:g} 4-bit ratio, photo pool", "",
             "Selections from the fast search (`search=\"fast\"`: sensitivity table + "
             "surrogate-screened evolution, P 16 x 20 generations), not the exhaustive "
             "50 x 50 search of the Fashion-MNIST Table 7. Agreement with the 8-bit model on "
             "the evaluation photos [95 % bootstrap CI over photos]; top-1 on the 20 labelled "
             "photos; cycles simulated at batch 1.", "",
             "| row | 4-bit MACs | agree 8-bit [95 % CI] | KL to 8-bit | top-1 | cycles | "
             "bit-exact |", "|---|---:|---|---:|---:|---:|---|"]
    for label, key, method, special in TABLE7:
        d = base if key is None else os.path.join(out, key)
        r = _find(_rows(d, model, [method]), 0.0 if special == "ratio0" else ratio)
        if r is None:
            lines.append(f"| {label} | not measured | | | | | |")
            continue
        ci, acc, cyc, be = _cells(r)
        if method.endswith("+ft"):
            label = _ft_label(label, d, model, method[:-3])
        lines.append(f"| {label} | {100 * float(r['mac4_share']):.0f} % | {ci} | "
                     f"{_f(r['kl_8bit'], '.3f')} | {acc} | {cyc} | {be} |")
    path = os.path.join(out, f"table7_{model}.md")
    write_text(path, "\n".join(lines) + "\n")
    print(f"[knobs] wrote {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--method", default="evolutionary")
    p.add_argument("--base", required=True, help="finished sweep directory with the default rows")
    p.add_argument("--out", required=True)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--ratios", default="0.5", help="ratios to measure (0 and 1 are added)")
    p.add_argument("--table-ratios", default="0.5,1", help="ratios shown in the table")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--table7", type=float, default=None, metavar="RATIO",
                   help="also write the Table 7 analogue at this ratio")
    return _run(p.parse_args(argv))


def cli(argv=None) -> int:
    """``main`` for the command line: bad input is one line on stderr and exit code 2."""
    try:
        return main(argv)
    except FlexiQError as exc:
        print(f"lite_knobs: error: {exc}", file=sys.stderr)
        return 2


def _floats(text, flag) -> list:
    try:
        return [float(r) for r in text.split(",")]
    except ValueError:
        raise ConfigError(f"{flag}: comma-separated numbers expected, got {text!r}") from None


def _run(args) -> int:
    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    bad = [k for k in keys if k not in VARIANTS]
    if bad:
        raise ConfigError(f"--variants: unknown {bad}; known: {', '.join(VARIANTS)}")
    if not os.path.isfile(os.path.join(args.base, "sweep.csv")):
        raise ConfigError(f"--base {args.base}: no sweep.csv there (give a finished sweep directory)")
    ratios = _floats(args.ratios, "--ratios")
    table_ratios = _floats(args.table_ratios, "--table-ratios")
    import torch

    torch.set_num_threads(args.threads)
    if not args.table_only:
        for k in keys:
            run_variant(args.model, args.method, args.base, args.out, k,
                        {"ratios": ratios, "batch": args.batch})
    write_table(args.model, args.method, args.base, args.out,
                [k for k in keys if k != "naive"], table_ratios)
    if args.table7 is not None:
        write_table7(args.model, args.base, args.out, args.table7)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
