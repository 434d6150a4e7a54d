"""Timing-only simulation against the full path, per NPU configuration (issue 14 goals).

    OMP_NUM_THREADS=1 python benchmarks/bench_timing.py [--model resnet50] [--configs 3]
    OMP_NUM_THREADS=1 python benchmarks/bench_timing.py --paper   # + `flexiq cycles`, 9 x 5

Random weights, calibration on two seeded noise images, batch 1, ratios 0, 0.25, 0.5, 0.75,
1. Once per model: quantize, ``compiler.build_graph`` and a first compile (which keeps each
layer's permuted weights in the graph). Per NPU configuration:

* full path: ``compiler.compile`` from scratch + ``npu_sim.simulate`` (values) per ratio;
* timing path: ``compiler.compile(graph=...)`` + ``Machine.run(values=False)`` per ratio;

and checks that both give the same cycles. ``--paper`` then times the paper-scale study
(``experiments.paper_cycles``, 9 models x 5 ratios, timing path) end to end. Wall clock of
this run; compare the ratios, not the seconds across machines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--configs", type=int, default=3,
                    help="NPU configurations to time (0: none, e.g. with --paper)")
    ap.add_argument("--paper", action="store_true", help="also time the 9 x 5 paper study")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    ratios = [0.0, 0.25, 0.5, 0.75, 1.0]
    if args.configs:
        _per_config(args, ratios)
    if args.paper:
        _paper()
    return 0


def _per_config(args, ratios) -> None:
    import torch

    import compiler
    import models
    import npu_sim
    import quant
    from experiments import npu_run

    configs = [npu_sim.NPUConfig(), npu_sim.NPUConfig(rows=64, cols=16, inp_kib=128),
               npu_sim.NPUConfig(rows=64, cols=64, dram_bytes_per_cycle=16)][:args.configs]
    t = time.perf_counter()
    torch.manual_seed(0)
    net = models.get(args.model, pretrained=False)
    x = models.example_input(args.model, batch=2, seed=0)
    qm = quant.quantize(net, [x], progress=False)
    t_quant = time.perf_counter() - t
    t = time.perf_counter()
    graph = compiler.build_graph(qm, x[:1])
    # the first compile on a graph also permutes each layer's weights (kept in the graph)
    compiler.compile(qm, x[:1], ratios=ratios, name=args.model, graph=graph)
    t_graph = time.perf_counter() - t
    print(f"{args.model} at {x.shape[-1]}: once per model and G: quantize {t_quant:.2f} s, "
          f"compiler graph + weight tables {t_graph:.2f} s")
    print(f"{'config':<34} {'full s':>8} {'timing s':>9} {'cpu s':>6} {'compile s':>9} "
          f"{'ratio':>7}  cycles equal")
    worst = 0.0
    for cfg in configs:
        name = f"{cfg.rows}x{cfg.cols} inp {cfg.inp_kib} KiB dram {cfg.dram_bytes_per_cycle} B/c"
        t = time.perf_counter()
        prog = compiler.compile(qm, x[:1], config=cfg, ratios=ratios, name=args.model)
        xin = compiler.encode_input(prog, x[:1])
        full = [npu_sim.simulate(prog, xin, max4=npu_run.max4_list(prog, qm, r), config=cfg).cycles
                for r in ratios]
        t_full = time.perf_counter() - t
        t = time.perf_counter()
        c = time.process_time()
        prog2 = compiler.compile(qm, x[:1], config=cfg, ratios=ratios, name=args.model,
                                 graph=graph)
        t_comp = time.perf_counter() - t
        fast = [res.cycles for res in npu_run.timing(prog2, qm, ratios, config=cfg).values()]
        t_fast = time.perf_counter() - t
        c_fast = time.process_time() - c
        worst = max(worst, t_fast)
        print(f"{name:<34} {t_full:>8.2f} {t_fast:>9.2f} {c_fast:>6.2f} {t_comp:>9.2f} "
              f"{t_full / t_fast:>6.1f}x  {full == fast}", flush=True)
    print(f"goal: compile + 5 ratios per configuration <= 1 s on one core: worst wall "
          f"{worst:.2f} s -> {'met' if worst <= 1.0 else 'NOT met'}")


def _paper() -> None:
    from experiments import io
    from experiments.paper_cycles import run_paper_cycles

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        rows = run_paper_cycles(d, progress=False, plot=False)
        dt = time.perf_counter() - t
    print(f"paper cycles (timing path): {len(rows)} rows in {dt:.1f} s "
          f"({dt / 60:.2f} min; goal <= 2 min; the full path took 47 min here)")
    ref = os.path.join(os.path.dirname(__file__), "..", "docs", "results", "paper_cycles.csv")
    if os.path.exists(ref):
        full = {(r["model"], float(r["ratio"])): int(float(r["cycles"]))
                for r in io.read_csv(ref)}
        same = sum(full.get((r["model"], float(r["ratio"]))) == r["cycles"] for r in rows)
        print(f"cycles equal to the full simulation's table (docs/results): {same}/{len(rows)}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
