"""Integer-runtime speed per photo against the evaluation batch, on EfficientNet-Lite0.

The sweep runs the integer runtime in batches of at most ``--batch`` inputs, cut to about
``experiments.sweep.BATCH_VALUES`` input values each (``eval_batch``). This prints the time
per photo at each batch size measured in this one run and its ratio to batch 32 (the
sweep's earlier choice for 224-pixel networks), and checks that the output codes do not
depend on the batch. Range priority at ratio 0.5, 32 calibration views.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/bench_eval_batch.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch


def main(argv=None) -> int:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from experiments import methods as M
    from experiments.data import calibration_batches
    from experiments.model_ref import load_registry_model
    from experiments.sweep import eval_batch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--images", type=int, default=32, help="photos timed per batch size")
    ap.add_argument("--batches", default="32,16,8,4,2")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_registry_model(a.model, pretrained=True, weights=None)
    calib = calibration_batches(a.model, 32, seed=0)
    qm = M.prepare_qmodel("range", model, calib, [0.0, 0.5, 1.0])
    qm.set_ratio(0.5)
    x = torch.cat(calib)[:a.images]
    sizes = [int(b) for b in a.batches.split(",")]
    auto = eval_batch(256, x)
    if auto not in sizes:
        sizes.append(auto)
    times, codes = {}, {}
    for b in sizes:
        qm.run(x[:b])  # warm-up: first-call allocations and caches
        t = time.perf_counter()
        out = [qm.run(x[i:i + b]).codes.numpy() for i in range(0, len(x), b)]
        times[b] = (time.perf_counter() - t) / len(x)
        codes[b] = np.concatenate(out)
    same = all(np.array_equal(codes[b], codes[sizes[0]]) for b in sizes)
    ref = 32 if 32 in times else sizes[0]
    base = times[ref]
    print(f"{a.model}, {len(x)} photos, 1 thread; the sweep's choice: batch {auto}")
    print(f"| batch | s / photo | speed vs batch {ref} |")
    print("|---:|---:|---:|")
    for b in sizes:
        print(f"| {b}{' (eval_batch)' if b == auto else ''} | {times[b]:.3f} | {base / times[b]:.2f}x |")
    print(f"output codes identical at every batch: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
