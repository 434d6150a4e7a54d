"""The README's "Your own model" commands run as written (outputs under a temporary folder)."""

import os
import re
import shlex

import numpy as np

import npu_sim
from experiments import io
from experiments.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _section_commands() -> list[list[str]]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [shlex.split(line) for b in blocks for line in b.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_readme_own_model_commands_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    cmds = _section_commands()
    assert [c[:2] for c in cmds] == [["flexiq", "compile"], ["flexiq", "simulate"],
                                     ["flexiq", "sweep"]]
    for argv in cmds:
        argv = [str(tmp_path / a) if a.startswith("runs/") else a for a in argv[1:]]
        assert main(argv) == 0, argv
    out = capsys.readouterr().out
    assert "model tiny_resnet" in out and "has no labels" in out
    prog = npu_sim.Program.load(str(tmp_path / "runs/tiny_resnet.npz"))
    assert prog.meta["model"] == "tiny_resnet"
    rows = io.read_csv(tmp_path / "runs/tiny_resnet_sweep/sweep.csv")
    assert {r["model"] for r in rows} == {"tiny_resnet"} and len(rows) == 3
    assert all(r["sim_bitexact"] == "1" for r in rows)
    cycles = [int(r["cycles"]) for r in sorted(rows, key=lambda r: float(r["ratio"]))]
    assert np.all(np.diff(cycles) < 0)  # more 4-bit channels, fewer cycles
