"""experiments/gpu_bench.py: plumbing on the CPU (--cpu-smoke) and refusal without CUDA."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments import gpu_bench

ROOT = Path(__file__).resolve().parents[2]


def test_cpu_smoke_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    assert gpu_bench.main(["--cpu-smoke", "-o", str(out), "--ratios", "0,0.5,1"]) == 0
    doc = json.loads(out.read_text())
    assert doc["gpu"] and doc["device"] == "cpu" and doc["kernel"] == "emulated"
    assert len(doc["results"]) == 3 * len(gpu_bench.smoke_shapes())
    for row in doc["results"]:
        assert row["exact"] is True
        assert row["int8_us"] > 0 and row["mixed_ref_us"] > 0 and row["mixed_kernel_us"] > 0
        assert row["n4"] == gpu_bench.n4_for(row["ratio"], row["K"], row["group_size"])
    assert {s["layer"] for s in doc["switch"]} == {s["layer"] for s in gpu_bench.smoke_shapes()}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_refuses_without_cuda(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "gpu_bench.py"),
                           "-o", str(tmp_path / "x.json")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr
    assert not (tmp_path / "x.json").exists()


def test_shapes_are_the_requested_ones():
    vit = {(s["K"], s["N"]) for s in gpu_bench.vit_b16_shapes(16)}
    assert vit == {(768, 2304), (768, 768), (768, 3072), (3072, 768)}
    assert all(s["M"] == 197 * 16 for s in gpu_bench.vit_b16_shapes(16))
    rn = gpu_bench.resnet20_fmnist_shapes(8)
    assert (8 * 28 * 28, 144, 16) in {(s["M"], s["K"], s["N"]) for s in rn}
    assert (8, 64, 10) in {(s["M"], s["K"], s["N"]) for s in rn}
    assert all(s["group_size"] in (16, 32, 64) for s in rn)


def test_n4_rounds_down_to_whole_groups():
    assert gpu_bench.n4_for(0.0, 768, 64) == 0
    assert gpu_bench.n4_for(0.5, 768, 64) == 384
    assert gpu_bench.n4_for(0.3, 144, 16) == 32
    assert gpu_bench.n4_for(1.0, 9, 16) == 9
