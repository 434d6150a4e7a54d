"""The Python API's traps: ratios that silently did nothing, float input to simulate,
non-atomic saves, resume of a cut sweep row, relabelled exceptions, thread limits, the NPU
config's group size."""

import os
import warnings

import numpy as np
import pytest
import torch

import compiler
import npu_sim
import quant
from experiments import io
from experiments.sweep_table import COLUMNS, SweepTable
from quant.errors import ConfigError, InputError, RatioError, RatioWarning, UnsupportedOpError
from tests.quant.nets import SmallConvNet, init_bn


def test_ratio_off_the_ladder_is_a_named_error(small_program):
    qm, x, prog, _ = small_program
    with pytest.raises(RatioError, match=r"not on the attached selection's ladder \(0, 0.5, 1\)"):
        qm.set_ratio(0.3)
    with pytest.raises(RatioError, match="no max4 table for ratio 0.3"):
        npu_sim.simulate(prog, x[:1], ratio=0.3)


def test_ratio_that_changes_nothing_warns():
    torch.manual_seed(0)
    m, x = init_bn(SmallConvNet()), torch.randn(4, 1, 12, 12)
    qm = quant.quantize(m, [x], progress=False)  # no selection: layers of one 64-group
    with pytest.warns(RatioWarning, match="runs nothing in 4 bits"):
        qm.set_ratio(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qm.set_ratio(1.0)  # whole layers go 4-bit: no warning


def test_selected_ratios_cost_less_than_8_bits(small_program):
    qm, x, prog, _ = small_program
    cycles = [npu_sim.simulate(prog, x[:1], ratio=r).cycles for r in (0, 0.5, 1)]
    assert cycles[0] > cycles[1] > cycles[2]


def test_simulate_takes_float_input_and_rejects_the_rest(small_program):
    qm, x, prog, _ = small_program
    x1 = x[:1]
    a = npu_sim.simulate(prog, x1, ratio=0.5)  # a torch tensor of float NCHW input
    b = npu_sim.simulate(prog, compiler.encode_input(prog, x1), ratio=0.5)  # codes
    np.testing.assert_array_equal(a.output, b.output)
    qm.set_ratio(0.5)
    ref = qm.run(x1).codes.numpy()
    np.testing.assert_array_equal(a.output.reshape(ref.shape), ref)
    with pytest.raises(InputError, match="NHWC"):
        npu_sim.simulate(prog, x1.permute(0, 2, 3, 1).numpy(), ratio=0.5)
    bad = x1.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        npu_sim.simulate(prog, bad, ratio=0.5)
    with pytest.raises(InputError, match="not numeric"):
        npu_sim.simulate(prog, np.array([[None]], dtype=object), ratio=0.5)


def test_program_save_is_atomic(small_program, tmp_path, monkeypatch):
    _, _, prog, good = small_program
    path = tmp_path / "p.npz"
    path.write_bytes(good.read_bytes())

    def interrupted(f, **kw):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prog.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["p.npz"]  # no temporary file left
    assert npu_sim.Program.load(path).meta["model"] == "small"  # the old file is intact


def test_resume_drops_a_row_cut_mid_write(tmp_path):
    t = SweepTable(tmp_path)
    for i, r in enumerate((0.0, 0.5, 1.0)):
        t.add({"model": "m", "method": "range", "ratio": r, "accuracy": 0.9 - i / 10,
               "cycles": 1000 - 100 * i, "eval_set": "fashion-mnist-test"}, write=False)
    t.write()
    assert len(SweepTable.load(tmp_path).rows) == 3
    text = open(t.csv_path).read()
    cut = text[: text.rindex("fashion-mnist-test")]  # the last row loses its tail
    io.write_text(t.csv_path, cut)
    back = SweepTable.load(tmp_path)
    assert back.dropped == 1 and sorted(k[2] for k in back.rows) == ["0", "0.5"]
    # a CSV row that disagrees with sweep.json (a blanked value) is not trusted either
    io.write_text(t.csv_path, text.replace(",fashion-mnist-test", ",", 1))
    assert SweepTable.load(tmp_path).dropped == 1
    assert len(COLUMNS) == len(text.splitlines()[0].split(","))


@pytest.mark.parametrize("exc,expected", [(TimeoutError("too slow"), TimeoutError),
                                          (MemoryError(), MemoryError),
                                          (TypeError("bad arg"), UnsupportedOpError)])
def test_only_op_failures_become_unsupported_op(small_program, monkeypatch, exc, expected):
    from quant.runtime import IntBackend

    qm, x, _, _ = small_program

    def boom(self, n, L, x):
        raise exc

    monkeypatch.setattr(IntBackend, "gemm", boom)  # an op's arithmetic fails
    with pytest.raises(expected):
        qm.run(x[:1])


def test_threads_limit_blas_and_torch():
    from threadpoolctl import threadpool_info

    from experiments.args import apply_threads

    old = torch.get_num_threads()
    env = os.environ.get("OMP_NUM_THREADS")
    try:
        assert apply_threads(1, "compile") == 1
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    finally:
        torch.set_num_threads(old)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


def test_npu_group_size_reaches_the_compiler():
    torch.manual_seed(0)
    m, x = init_bn(SmallConvNet()), torch.randn(4, 1, 12, 12)
    qm64 = quant.quantize(m, [x], progress=False)
    with pytest.raises(ConfigError, match="group_size = 32"):
        compiler.compile(qm64, x[:1], config=npu_sim.NPUConfig(group_size=32))
    qm32 = quant.quantize(m, [x], quant.QuantConfig(group_size=32), progress=False)
    prog = compiler.compile(qm32, x[:1], config=npu_sim.NPUConfig(group_size=32))
    gs = {d["group_size"] for d in prog.meta["gemm_layers"].values()}
    assert 32 in gs and 64 not in gs
    with pytest.raises(ConfigError, match="group_size = 7"):
        compiler.compile(qm64, x[:1], config=npu_sim.NPUConfig(group_size=7))
    with pytest.raises(ConfigError, match="at most 1024"):
        npu_sim.NPUConfig(rows=100000)


def test_select_removes_its_checkpoint(tmp_path, capsys):
    from experiments.cli import main

    out = tmp_path / "sel.json"
    argv = ["select", "resnet20_fmnist", "-o", str(out), "--population", "4",
            "--generations", "1", "--calib", "16", "--fitness-batch", "8", "--ratios", "0,1",
            "--quiet"]
    assert main(argv) == 0
    assert sorted(os.listdir(tmp_path)) == ["sel.json"]
    assert main(argv) == 0  # a second run to the same -o is not blocked


def test_select_fitness_and_layer_seed_flags_reach_the_search(tmp_path, capsys):
    import json

    from experiments.cli import main

    base = ["select", "resnet20_fmnist", "--population", "4", "--generations", "1", "--calib",
            "16", "--fitness-batch", "8", "--ratios", "0,0.5,1", "--quiet"]
    assert main(base + ["-o", str(tmp_path / "a.json")]) == 0
    assert main(base + ["-o", str(tmp_path / "b.json"), "--fitness", "l2", "--no-layer-seed"]) == 0
    a = json.loads((tmp_path / "a.json").read_text())["meta"]
    b = json.loads((tmp_path / "b.json").read_text())["meta"]
    assert "KL" in a["fitness"] and a["layer_seed"] is True
    assert "L2" in b["fitness"] and b["layer_seed"] is False


def test_compile_without_selection_uses_range_priority(tmp_path, capsys):
    from experiments.cli import main

    out = tmp_path / "p.npz"
    assert main(["compile", "resnet20_fmnist", "-o", str(out), "--calib", "8", "--data",
                 "synthetic", "--ratios", "0,0.5"]) == 0
    assert "using range priority" in capsys.readouterr().out
    prog = npu_sim.Program.load(out)
    assert prog.meta["selection"]["method"] == "range"
    assert prog.max4_tables["0.5"] != prog.max4_tables["0"]


def test_selection_for_another_group_size_is_refused(small_program):
    from quant.errors import SelectionFileError

    qm, x, _, _ = small_program
    qm32 = quant.quantize(init_bn(SmallConvNet()), [x], quant.QuantConfig(group_size=32),
                          progress=False)
    with pytest.raises(SelectionFileError, match="group size 64"):
        qm32.attach_selection(qm.selection)


def test_trace_does_not_relabel_a_timeout():
    from quant.capture import trace

    class Slow(torch.nn.Module):
        def forward(self, x):
            raise TimeoutError("the caller's deadline")

    class Branchy(torch.nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # data-dependent: fx cannot trace it

    with pytest.raises(TimeoutError):
        trace(Slow())
    with pytest.raises(UnsupportedOpError, match="could not trace"):
        trace(Branchy())


def test_max4_beyond_the_layer_is_refused(small_program):
    _, x, prog, _ = small_program
    m = npu_sim.Machine(prog)
    with pytest.raises(npu_sim.ProgramError, match="exceeds the layer's"):
        m.set_max4([10**6] * len(prog.max4_regs))
