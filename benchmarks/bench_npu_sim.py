"""NPU simulator speed figures (one run, printed; not a test).

* exact mode: PE-cycles per second of the cycle-stepped array (one core);
* fast mode: simulated MACs per second;
* ResNet-50 at 224, batch 1: its 53 convs + the classifier (54 GEMMs) driven directly
  through ``run_conv2d`` in fast mode (values and cycles), at 4-bit ratios 0, 0.5 and 1.

Usage: python benchmarks/bench_npu_sim.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from npu_sim import NPUConfig, run_conv2d, run_gemm


def resnet50_convs():
    """(name, C_in, C_out, k, stride, H_in) of ResNet-50 (torchvision v1.5) at 224."""
    out = [("conv1", 3, 64, 7, 2, 224)]
    h = 56
    c_in = 64
    for li, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2),
                                                   (512, 3, 2)), start=1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            p = f"layer{li}.{b}"
            out.append((f"{p}.conv1", c_in, width, 1, 1, h))
            out.append((f"{p}.conv2", width, width, 3, s, h))
            h2 = h // s
            out.append((f"{p}.conv3", width, 4 * width, 1, 1, h2))
            if b == 0:
                out.append((f"{p}.downsample", c_in, 4 * width, 1, s, h))
            c_in = 4 * width
            h = h2
    return out


def bench_exact(seconds=3.0, n4=256, m=64):
    """End-to-end exact-mode ``run_gemm`` (operand lowering, packing, the array) on a
    [m, 512] x [128, 512] GEMM with ``n4`` 4-bit channels: PE-cycles per second."""
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (m, 512))
    w = rng.integers(-127, 128, (128, 512))
    run_gemm(x[:2, :64], w[:4, :64], 0, mode="exact")  # compile / load the cache
    t0 = time.perf_counter()
    pe_cycles = 0
    n = 0
    while time.perf_counter() - t0 < seconds or n == 0:
        r = run_gemm(x, w, n4, mode="exact")
        pe_cycles += r.stats["pe_cycles"]
        n += 1
    dt = time.perf_counter() - t0
    return pe_cycles / dt, dt / n, r


def bench_array_only(seconds=2.0, n4=256, m=64):
    """The cycle-stepped array alone (``pe_array.run_array`` on lowered operands)."""
    from npu_sim.folds import plan_folds
    from npu_sim.pe_array import run_array

    cfg = NPUConfig()
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, (m, 512))
    w = rng.integers(-8, 8, (128, 512))
    plan = plan_folds(512, n4, group_size=cfg.group_size, rows=cfg.rows)
    xs = np.zeros((plan.n_folds, m), np.int64)
    ws = np.zeros((plan.n_folds, 128), np.int64)
    run_array(x, w, plan, xs, ws, rows=cfg.rows, cols=cfg.cols)
    t0 = time.perf_counter()
    cycles = 0
    while time.perf_counter() - t0 < seconds or cycles == 0:
        cycles += run_array(x, w, plan, xs, ws, rows=cfg.rows, cols=cfg.cols)[1]
    return cycles * cfg.rows * cfg.cols / (time.perf_counter() - t0)


def bench_resnet(ratio, layers, rng):
    # inputs prepared outside the timed region
    data = []
    for name, cin, cout, k, s, h in layers:
        x = rng.integers(0, 256, (1, cin, h, h)) if name != "conv1" else \
            rng.integers(-128, 128, (1, cin, h, h))
        w = rng.integers(-127, 128, (cout, cin, k, k))
        n4 = 0 if name == "conv1" else (int(ratio * cin) // 64) * 64
        data.append((name, x, w, n4, k, s, name != "conv1"))
    xf = rng.integers(0, 256, (1, 2048))
    wf = rng.integers(-127, 128, (1000, 2048))
    t0 = time.perf_counter()
    cycles = 0
    macs = 0
    for _name, x, w, n4, k, s, unsigned in data:
        r = run_conv2d(x, w, n4, stride=s, padding=k // 2, x_signed=not unsigned)
        cycles += r.cycles
        macs += r.stats["macs"]
    r = run_gemm(xf, wf, 0, x_signed=False)  # classifier stays 8-bit
    cycles += r.cycles
    macs += r.stats["macs"]
    return time.perf_counter() - t0, cycles, macs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sec = 1.0 if args.quick else 3.0
    for n4, m in ((256, 64), (0, 64), (256, 512)):
        rate, per_call, r = bench_exact(sec, n4, m)
        print(f"exact mode, run_gemm [{m}x512]x[128x512] n4={n4}: {rate:.3e} PE-cycles/s on "
              f"one core ({r.cycles} cycles x {NPUConfig().rows}x{NPUConfig().cols} PEs in "
              f"{per_call * 1e3:.1f} ms; target 1e9 -> {rate / 1e9:.2f}x)")
    rate = bench_array_only(sec)
    print(f"exact mode, the array alone (run_array, n4=256, M=64): {rate:.3e} PE-cycles/s "
          f"({rate / 1e9:.2f}x the target)")
    layers = resnet50_convs()
    print(f"ResNet-50 at 224, batch 1: {len(layers)} convs + 1 linear")
    rng = np.random.default_rng(1)
    bench_resnet(0.0, layers[:3], rng)  # warm-up
    times = {}
    for ratio in (0.0, 0.5, 1.0):
        dt, cyc, macs = bench_resnet(ratio, layers, rng)
        times[ratio] = dt
        print(f"  fast mode, 4-bit ratio {ratio:.1f}: {dt:.2f} s (target <= 5 s: "
              f"{dt / 5:.2f} of budget), {macs / 1e9:.2f} GMAC -> {macs / dt:.3e} MAC/s, "
              f"array cycles {cyc:,} ({cyc / 1e3:.0f} us at 1 GHz)")


if __name__ == "__main__":
    main()
