"""What the co-design knobs cost in simulated cycles, on EfficientNet-Lite.

The numeric contract (docs/numeric_contract.md) leaves three knobs to the hardware/software
co-design: the group size G per layer (``QuantConfig.group_size``; a 4-bit fold holds 64
channels, so G = 32 or 16 leaves folds partly empty), per-weight shifts
(``weight_shift="weight"``: a shifter per PE) and dynamic activation extraction (``dynamic``:
the producer OR-reduces magnitudes per group as it writes). For each variant the model is
quantized (calibration photos), compiled once and simulated at batch 1 at each ratio; the
table gives total cycles, the ratio to the default at the same ratio, and the busy cycles
per op kind. ``--check`` also compares the simulator's output codes with the integer
runtime on that image (bit-exactness).

    PYTHONPATH=$PWD flock /tmp/flexiq-cpu.lock python benchmarks/bench_codesign_knobs.py \
        --out results/lite/codesign_knobs_lite0.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

VARIANTS = {
    "default": {},  # G = 64, one weight shift per group, static activation shifts
    "G=32": {"group_size": 32},
    "G=16": {"group_size": 16},
    "per-weight shifts": {"weight_shift": "weight"},
    "dynamic extraction": {"dynamic": True},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_lite0")
    p.add_argument("--ratios", default="0,0.5,1")
    p.add_argument("--calib-images", type=int, default=32)
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--check", action="store_true", help="simulator == integer runtime per run")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    import models
    import quant
    from experiments import npu_run
    from experiments.data import calibration_batches, evaluation_set

    npu_run.require_compiler()
    ratios = [float(r) for r in args.ratios.split(",")]
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        print(f"unknown variants {bad}; known: {list(VARIANTS)}", file=sys.stderr)
        return 2
    model = models.get(args.model)
    calib = calibration_batches(args.model, args.calib_images)
    x = evaluation_set(args.model).x[:1]
    rows = []
    for name in names:
        t = time.time()
        qm = quant.quantize(model, calib, quant.QuantConfig(**VARIANTS[name]), progress=False)
        prog = npu_run.compile_program(qm, x, ratios=ratios, name=args.model)
        for r in ratios:
            qm.set_ratio(r)
            res = npu_run.simulate(prog, qm, x, r)
            row = {"variant": name, "ratio": r, "cycles": int(res.cycles),
                   "mac4_share": qm.four_bit_mac_share(), **npu_run.cycle_breakdown(res, qm)}
            if args.check:
                ref = qm.run(x).codes.numpy().reshape(-1)
                row["sim_bitexact"] = int(np.array_equal(npu_run.output_codes(res, prog).reshape(-1), ref))
            rows.append(row)
        print(f"[knobs] {name}: {time.time() - t:.0f} s", flush=True)
    base = {r["ratio"]: r["cycles"] for r in rows if r["variant"] == names[0]}
    print(f"| variant | ratio | cycles | vs {names[0]} | 4-bit MACs | pointwise | conv | depthwise "
          "| vector | reorder | dma | bit-exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        r["vs_first"] = r["cycles"] / base[r["ratio"]] if r["ratio"] in base else None
        print(f"| {r['variant']} | {r['ratio']:g} | {r['cycles']:,} | {r['vs_first']:.3f} | "
              f"{100 * r['mac4_share']:.0f} % | {r['cyc_pointwise']:,} | {r['cyc_conv']:,} | "
              f"{r['cyc_depthwise']:,} | {r['cyc_vector']:,} | {r['cyc_reorder']:,} | "
              f"{r['cyc_dma']:,} | {r.get('sim_bitexact', '-')} |")
    if args.out:
        from experiments.io import write_json

        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_json(args.out, {"model": args.model, "ratios": ratios, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
