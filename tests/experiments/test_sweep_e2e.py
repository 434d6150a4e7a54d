"""A small end-to-end sweep: tiny model, 2 ratios, a few synthetic images, through the
compiler and the simulator; then resume and interruption."""

import numpy as np
import pytest
import torch
from torch import nn

from experiments import io, npu_run
from experiments import sweep as sweep_mod
from experiments.sweep import SweepOptions, run_sweep
from experiments.sweep_table import COLUMNS
from quant.errors import FlexiQError, SelectionFileError

pytestmark = pytest.mark.skipif(not npu_run.compiler_available(),
                                reason="compiler / simulator not available")


class Tiny(nn.Module):
    """28x28x1 -> 10 classes; one 64-channel conv and a Linear that can run in 4 bits."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(16, 64, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(64, 64, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(64, 64)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.relu(self.c3(x))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(torch.relu(self.fc1(x)))


def tiny():
    torch.manual_seed(0)
    return Tiny().eval()


def opts(**kw):
    base = dict(ratios=[0.0, 1.0], methods=["uniform_int4", "range"], limit=6, batch=8,
                calib_images=16, data="synthetic", progress=False, check_images=2)
    base.update(kw)
    return SweepOptions(**base)


def test_end_to_end_sweep_bitexact(tmp_path):
    table = run_sweep("resnet20_fmnist", tmp_path, opts(), model=tiny())
    rows = io.read_csv(tmp_path / "sweep.csv")
    assert list(rows[0]) == COLUMNS
    assert {(r["method"], float(r["ratio"])) for r in rows} == {
        ("uniform_int4", 0.0), ("uniform_int4", 1.0), ("range", 0.0), ("range", 1.0)}
    for r in rows:
        assert r["sim_bitexact"] == "1", r  # the simulator agrees with the integer runtime
        assert int(r["cycles"]) > 0
    r = {(x["method"], float(x["ratio"])): x for x in table.table()}
    assert r[("range", 0.0)]["agree_8bit"] == 1.0 and r[("range", 0.0)]["kl_8bit"] == 0.0
    assert r[("range", 1.0)]["cycles"] < r[("range", 0.0)]["cycles"]
    assert r[("range", 1.0)]["speedup_share"] == 1.0
    assert r[("range", 1.0)]["mac4_share"] > 0.5
    assert (tmp_path / "programs" / "resnet20_fmnist__range.npz").exists()
    for x in table.table():  # intervals bracket the value; cycles per op kind are filled
        for c in ("agree_8bit", "kl_8bit", "agree_fp32"):
            assert x[f"{c}_lo"] <= x[c] + 1e-12 and x[c] <= x[f"{c}_hi"] + 1e-12
        assert x["n_photos"] == 6
        assert x["cyc_conv"] > 0 and x["cyc_fc"] > 0 and x["cyc_depthwise"] == 0
        assert x["cyc_dma"] > 0 and x["cyc_reorder"] == x["reorder_cycles"]


def test_int4_ptq_rows_are_bit_exact_in_4bit_folds(tmp_path):
    table = run_sweep("resnet20_fmnist", tmp_path, opts(methods=["int4_ptq"]), model=tiny())
    rows = {float(r["ratio"]): r for r in table.table()}
    assert set(rows) == {0.0, 1.0}
    assert all(r["sim_bitexact"] == 1 for r in rows.values())
    assert rows[1.0]["mac4_share"] > 0.5 and rows[1.0]["cycles"] < rows[0.0]["cycles"]


def test_interrupted_sweep_resumes_and_skips_done_rows(tmp_path, monkeypatch):
    real = sweep_mod._measure
    calls = []

    def flaky(*a, **k):
        calls.append(a[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sweep_mod, "_measure", flaky)
    o = opts(methods=["range"], check_images=1)
    with pytest.raises(KeyboardInterrupt):
        run_sweep("resnet20_fmnist", tmp_path, o, model=tiny())
    rows = io.read_csv(tmp_path / "sweep.csv")
    assert [float(r["ratio"]) for r in rows] == [0.0]  # the finished row, complete
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]

    calls.clear()
    run_sweep("resnet20_fmnist", tmp_path, o, model=tiny())
    assert calls == [1.0]  # only the missing row was measured
    assert len(io.read_csv(tmp_path / "sweep.csv")) == 2

    calls.clear()
    run_sweep("resnet20_fmnist", tmp_path, o, model=tiny())
    assert calls == []  # nothing left to do

    with pytest.raises(Exception, match="other options"):
        run_sweep("resnet20_fmnist", tmp_path, opts(methods=["range"], limit=5), model=tiny())


def test_saved_selection_off_its_ladder_is_refused_before_any_row(tmp_path, monkeypatch):
    """A resumed sweep that asks a saved selection for a ratio it was not searched for stops
    with one line naming the file, before measuring anything."""
    run_sweep("resnet20_fmnist", tmp_path, opts(methods=["range"], check_images=0), model=tiny())
    calls = []
    monkeypatch.setattr(sweep_mod, "_measure", lambda *a, **k: calls.append(a[2]))
    with pytest.raises(SelectionFileError, match=r"range\.json was selected for the ratios "
                                                 r"\(0, 1\), not 0\.5"):
        run_sweep("resnet20_fmnist", tmp_path,
                  opts(methods=["range"], ratios=[0.0, 0.5, 1.0], check_images=0), model=tiny())
    assert calls == []


def test_every_default_method_runs_through_the_sweep(tmp_path):
    """The pipeline's methods, HAWQ's selection-like object and the searches included, each
    give bit-exact rows (a method whose selection the runtime cannot attach fails here)."""
    methods = ["hawq", "naive_msb", "random", "greedy", "evolutionary"]
    table = run_sweep("resnet20_fmnist", tmp_path,
                      opts(methods=methods, ratios=[0.0, 0.5], check_images=1,
                           search={"fitness_batch": 4, "population": 4, "generations": 2}),
                      model=tiny())
    rows = table.table()
    assert {x["method"] for x in rows} == set(methods)
    assert all(x["sim_bitexact"] == 1 for x in rows)


def test_eval_batch_cuts_large_inputs_and_keeps_small_ones():
    assert sweep_mod.eval_batch(256, torch.zeros(10, 1, 28, 28)) == 256
    assert sweep_mod.eval_batch(256, torch.zeros(10, 3, 224, 224)) == 6
    assert sweep_mod.eval_batch(4, torch.zeros(10, 3, 224, 224)) == 4
    assert sweep_mod.eval_batch(256, torch.zeros(10, 3, 2048, 2048)) == 1


def test_runtime_outputs_do_not_depend_on_the_evaluation_batch(monkeypatch):
    import numpy as np

    from experiments import methods as M
    from experiments.data import calibration_batches

    calib = calibration_batches("resnet20_fmnist", 16, seed=0, data="synthetic")
    qm = M.prepare_qmodel("range", tiny(), calib, [0.0, 0.5, 1.0])
    qm.set_ratio(0.5)
    x = torch.cat(calib)
    whole = sweep_mod._run_logits(qm, x, 16, "", False)
    monkeypatch.setattr(sweep_mod, "BATCH_VALUES", 3 * x[0].numel())  # batches of 3
    assert sweep_mod.eval_batch(16, x) == 3
    cut = sweep_mod._run_logits(qm, x, 16, "", False)
    assert np.array_equal(whole[1], cut[1]) and np.array_equal(whole[0], cut[0])


def test_rows_measured_on_other_data_are_not_mixed_with_new_ones(tmp_path, monkeypatch):
    """A photo source installed after some rows were measured changes the inputs: the sweep
    refuses to resume there (one line), and --fresh starts over."""
    run_sweep("resnet20_fmnist", tmp_path, opts(methods=["range"]), model=tiny())
    meta = io.read_json(tmp_path / "sweep.json")["meta"]
    assert meta["data"]["resnet20_fmnist"]["id"]
    real = sweep_mod.evaluation_set

    def other(*a, **k):
        ev = real(*a, **k)
        ev.x = ev.x + 0.5
        return ev

    monkeypatch.setattr(sweep_mod, "evaluation_set", other)
    before = (tmp_path / "sweep.csv").read_bytes()
    with pytest.raises(FlexiQError, match="measured on other data"):
        run_sweep("resnet20_fmnist", tmp_path, opts(methods=["range", "hawq"]), model=tiny())
    assert (tmp_path / "sweep.csv").read_bytes() == before
    t = run_sweep("resnet20_fmnist", tmp_path, opts(methods=["range", "hawq"], fresh=True),
                  model=tiny())
    assert {k[1] for k in t.rows} == {"range", "hawq"}


def test_finetuned_method_alone_is_measured_against_the_model_as_quantized(tmp_path):
    """A sweep whose first method is finetuned takes its 8-bit reference from the model as
    quantized, not from the finetuned model's ratio 0 (finetuning moves the 8-bit path)."""
    run_sweep("resnet20_fmnist", tmp_path / "plain", opts(methods=["range"]), model=tiny())
    run_sweep("resnet20_fmnist", tmp_path / "ft", opts(methods=["range+ft"]), model=tiny())
    ref = [np.load(tmp_path / d / "cache" / "resnet20_fmnist_refs.npz") for d in ("plain", "ft")]
    assert np.array_equal(ref[0]["ref8"], ref[1]["ref8"])
    ft0 = io.read_csv(tmp_path / "ft" / "sweep.csv")[0]
    assert float(ft0["ratio"]) == 0.0 and float(ft0["kl_8bit"]) > 0.0  # the 8-bit path moved
