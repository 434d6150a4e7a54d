"""Compile and simulate times for full models (issue 5 figures).

    python benchmarks/bench_compiler.py [--models resnet50,vit_b_16] [--threads 1]

Random weights (cycles only), calibration on seeded noise, batch 1. Prints, per model:
quantize, compile and simulate wall times (simulate per ratio, fast mode), instruction
count, cycles per ratio and the speedup of 100 % 4-bit over 8-bit. Timings are wall
clock of this run; compare ratios between rows of one run, not across machines.
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,vit_b_16")
    ap.add_argument("--ratios", default="0,0.5,1")
    ap.add_argument("--threads", type=int, default=0, help="BLAS/torch threads (0: leave)")
    args = ap.parse_args(argv)
    if args.threads:
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[v] = str(args.threads)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import compiler
    import models
    import npu_sim
    import quant

    ratios = [float(r) for r in args.ratios.split(",")]
    print(f"{'model':<14} {'quantize s':>10} {'compile s':>10} {'instrs':>8} "
          + " ".join(f"{'sim s @' + format(r, 'g'):>10} {'cycles @' + format(r, 'g'):>14}" for r in ratios)
          + f" {'speedup 1.0':>11}")
    for name in args.models.split(","):
        info = models.info(name)
        torch.manual_seed(0)
        m = models.get(name, pretrained=False)
        x = torch.randn(2, info["channels"], info["input_size"], info["input_size"])
        t = time.perf_counter()
        qm = quant.quantize(m, [x], progress=False)
        tq = time.perf_counter() - t
        t = time.perf_counter()
        prog = compiler.compile(qm, x[:1], ratios=ratios, name=name)
        tc = time.perf_counter() - t
        xin = compiler.encode_input(prog, x[:1])
        cells, cyc = [], {}
        for r in ratios:
            t = time.perf_counter()
            res = npu_sim.simulate(prog, xin, ratio=r)
            ts = time.perf_counter() - t
            cyc[r] = res.cycles
            cells.append(f"{ts:>10.2f} {res.cycles:>14,}")
        sp = cyc[min(ratios)] / cyc[max(ratios)] if cyc[max(ratios)] else float("nan")
        print(f"{name:<14} {tq:>10.1f} {tc:>10.1f} {len(prog.instructions):>8} " + " ".join(cells)
              + f" {sp:>11.2f}x", flush=True)
        del qm, prog
        np.random.default_rng(0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
