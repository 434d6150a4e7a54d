"""The SCALE-Sim drop-in against SCALE-Sim 3.0.0, side by side in one run (printed; not a test).

Both simulate the same topology (default: ResNet-50 at 224, the 54-layer conv topology kept
as a test fixture) on the same weight-stationary config (default 32x32) and write their
reports to a temporary folder. Times are in-process (imports and interpreter start-up
excluded on both sides): SCALE-Sim's ``scalesim(...).run_scale()`` once, ours (read config,
read topology, count, write reports) as the best of ``--repeat`` runs. The per-layer total
cycles of the two are compared and any difference is printed.

SCALE-Sim runs in its own virtual environment (``scripts/make_scalesim_golden.py
--make-venv`` creates it). Without it only our time is printed.

Usage: python benchmarks/bench_scalesim.py [--scalesim-python PY] [--layers N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "experiments", "fixtures", "scalesim")
DEFAULT_PY = os.environ.get("SCALESIM_PYTHON", "/tmp/scalesim-venv/bin/python")

RUNNER = r"""
import json, sys, time, io, contextlib
from scalesim.scale_sim import scalesim
cfg, topo, layout, out, gemm = sys.argv[1:6]
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                 layout=layout, input_type_gemm=gemm == "gemm")
    s.run_scale(top_path=out)
dt = time.perf_counter() - t0
cycles = [int(o.get_compute_report_items()[1]) for o in s.runner.single_layer_sim_object_list]
print(json.dumps({"seconds": dt, "cycles": cycles}))
"""


def head_topology(path, n, dest):
    with open(path) as f:
        lines = f.read().splitlines()
    with open(dest, "w") as f:
        f.write("\n".join(lines[:1 + n]) + "\n")
    return dest


def run_ours(cfg_path, topo_path, kind, out, repeat):
    from experiments.scalesim import read_config, read_topology, simulate, write_reports

    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        cfg = read_config(cfg_path)
        layers = read_topology(topo_path, kind)
        reports = simulate(cfg, layers)
        write_reports(out, cfg.run_name, reports)
        best = min(best, time.perf_counter() - t0)
    return best, [r.total_cycles for r in reports], layers


def run_scalesim(py, cfg_path, topo_path, kind, out):
    os.makedirs(out, exist_ok=True)
    layout = os.path.join(out, "layout.csv")
    with open(layout, "w") as f:
        f.write("Layer name,\n")  # SCALE-Sim opens a layout file; custom layouts are off
    res = subprocess.run([py, "-c", RUNNER, cfg_path, topo_path, layout, out, kind],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"SCALE-Sim failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", default=os.path.join(FIXTURES, "configs", "ws_32x32.cfg"))
    ap.add_argument("-t", default=os.path.join(FIXTURES, "resnet50.csv"))
    ap.add_argument("-i", default="conv", choices=["conv", "gemm"])
    ap.add_argument("--scalesim-python", default=DEFAULT_PY)
    ap.add_argument("--layers", type=int, default=0,
                    help="first N layers only (0: the whole topology)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--keep-reports", metavar="DIR",
                    help="copy SCALE-Sim's three reports to DIR (what the golden script keeps)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        topo = args.t
        if args.layers:
            topo = head_topology(args.t, args.layers, os.path.join(tmp, "topology.csv"))
        ours_s, ours_cycles, layers = run_ours(args.c, topo, args.i, os.path.join(tmp, "ours"),
                                               args.repeat)
        print(f"topology {os.path.basename(args.t)}: {len(layers)} layers"
              + (f" (first {args.layers})" if args.layers else " (whole topology)")
              + f", config {os.path.basename(args.c)}")
        print(f"drop-in   : {ours_s * 1e3:10.3f} ms (best of {args.repeat}), "
              f"total cycles {sum(ours_cycles)}")
        if not os.path.exists(args.scalesim_python):
            print(f"SCALE-Sim : skipped, no SCALE-Sim venv at {args.scalesim_python} (create "
                  f"it with: python scripts/make_scalesim_golden.py --make-venv)")
            return 0
        ref = run_scalesim(args.scalesim_python, os.path.abspath(args.c), os.path.abspath(topo),
                           args.i, os.path.join(tmp, "scalesim"))
        print(f"SCALE-Sim : {ref['seconds'] * 1e3:10.1f} ms, total cycles {sum(ref['cycles'])}")
        if args.keep_reports:
            import shutil

            run = next(d for d in os.listdir(os.path.join(tmp, "scalesim"))
                       if os.path.isdir(os.path.join(tmp, "scalesim", d)))
            os.makedirs(args.keep_reports, exist_ok=True)
            for name in ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv",
                         "DETAILED_ACCESS_REPORT.csv"):
                shutil.copyfile(os.path.join(tmp, "scalesim", run, name),
                                os.path.join(args.keep_reports, name))
        print(f"speed-up  : {ref['seconds'] / ours_s:,.0f}x")
        bad = [(ly.name, a, b) for ly, a, b in zip(layers, ours_cycles, ref["cycles"]) if a != b]
        if len(ref["cycles"]) != len(ours_cycles) or bad:
            print(f"MISMATCH in total cycles: {bad[:5]}")
            return 1
        print(f"total cycles equal on all {len(layers)} layers")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(HERE, ".."))
    sys.exit(main())
