"""Run SCALE-Sim 3.0.0 (in its own virtual environment) to make the drop-in's golden reports.

For every (config, topology) pair below, SCALE-Sim's ``COMPUTE_REPORT.csv``,
``BANDWIDTH_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv`` are copied to
``tests/experiments/fixtures/scalesim/golden/<config>__<topology>/``. The tests compare
``flexiq scalesim`` with these files column by column (docs/scalesim.md).

    python scripts/make_scalesim_golden.py --make-venv     # once: /tmp/scalesim-venv
    python scripts/make_scalesim_golden.py --only small    # the small pairs (seconds)
    flock /tmp/flexiq-cpu.lock python scripts/make_scalesim_golden.py --only resnet50  # minutes

``benchmarks/bench_scalesim.py -c .../ws_128x128.cfg --keep-reports
.../golden/ws_128x128__resnet50`` makes the same ResNet-50 files while it times SCALE-Sim.

SCALE-Sim 3.0.0 needs NumPy < 2.4 (it converts 1-element arrays with ``int()``), so the
venv pins it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "experiments", "fixtures", "scalesim")
VENV = os.environ.get("SCALESIM_VENV", "/tmp/scalesim-venv")
REPORTS = ("COMPUTE_REPORT.csv", "BANDWIDTH_REPORT.csv", "DETAILED_ACCESS_REPORT.csv")

# (config, topology, topology type)
PAIRS = [(cfg, topo, kind)
         for cfg in ("ws_8x8", "ws_16x4", "ws_4x12", "ws_32x32")
         for topo, kind in (("conv_small", "conv"), ("gemm_small", "gemm"))]
PAIRS.append(("ws_128x128", "resnet50", "conv"))

RUNNER = r"""
import sys, io, contextlib
from scalesim.scale_sim import scalesim
cfg, topo, layout, out, kind = sys.argv[1:6]
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                 layout=layout, input_type_gemm=kind == "gemm")
    s.run_scale(top_path=out)
"""


def make_venv(venv: str) -> None:
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "scalesim==3.0.0",
                    "numpy<2.4"], check=True)


def run_pair(py: str, cfg: str, topo: str, kind: str) -> str:
    dest = os.path.join(FIX, "golden", f"{cfg}__{topo}")
    cfg_path = os.path.join(FIX, "configs", cfg + ".cfg")
    with tempfile.TemporaryDirectory() as tmp:
        layout = os.path.join(tmp, "layout.csv")
        with open(layout, "w") as f:
            f.write("Layer name,\n")  # SCALE-Sim opens a layout file; custom layouts are off
        subprocess.run([py, "-c", RUNNER, cfg_path, os.path.join(FIX, topo + ".csv"), layout,
                        os.path.join(tmp, "out"), kind], check=True)
        os.makedirs(dest, exist_ok=True)
        for name in REPORTS:
            shutil.copyfile(os.path.join(tmp, "out", cfg, name), os.path.join(dest, name))
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--venv", default=VENV, help=f"SCALE-Sim venv (default {VENV})")
    ap.add_argument("--make-venv", action="store_true", help="create the venv and stop")
    ap.add_argument("--only", help="run only pairs whose '<config>__<topology>' contains this")
    args = ap.parse_args(argv)
    if args.make_venv:
        make_venv(args.venv)
        return 0
    py = os.path.join(args.venv, "bin", "python")
    if not os.path.exists(py):
        print(f"no SCALE-Sim venv at {args.venv}: run with --make-venv first", file=sys.stderr)
        return 2
    for cfg, topo, kind in PAIRS:
        if args.only and args.only not in f"{cfg}__{topo}":
            continue
        print(f"{cfg} x {topo} ({kind}) -> {os.path.relpath(run_pair(py, cfg, topo, kind), ROOT)}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
