"""experiments/lite_knobs.py on a tiny synthetic sweep: variants reuse the base selection and
8-bit reference, and the tables pick the right rows."""

import filecmp

import pytest

from experiments import lite_knobs, npu_run
from experiments.sweep import run_sweep
from quant.errors import ConfigError
from tests.experiments.test_sweep_e2e import opts, tiny

pytestmark = pytest.mark.skipif(not npu_run.compiler_available(),
                                reason="compiler / simulator not available")

SYN = dict(limit=6, calib_images=16, data="synthetic", progress=False)


def test_variant_reuses_selection_and_reference(tmp_path):
    base, out = tmp_path / "base", tmp_path / "knobs"
    run_sweep("resnet20_fmnist", base, opts(methods=["range"], ratios=[0.0, 0.5, 1.0]),
              model=tiny())
    table = lite_knobs.run_variant("resnet20_fmnist", "range", str(base), str(out),
                                   "weight_shift", {"ratios": [0.5], "batch": 8}, net=tiny(), **SYN)
    sel = "selections/resnet20_fmnist__range.json"
    assert filecmp.cmp(base / sel, out / "weight_shift" / sel, shallow=False)
    assert filecmp.cmp(base / "cache/resnet20_fmnist_refs.npz",
                       out / "weight_shift/cache/resnet20_fmnist_refs.npz", shallow=False)
    rows = {float(r["ratio"]): r for r in table.table()}
    assert set(rows) == {0.0, 0.5, 1.0}
    assert rows[0.0]["agree_8bit"] == 1.0  # the copied reference is this 8-bit model's
    assert all(r["sim_bitexact"] == 1 for r in rows.values())

    lite_knobs.write_table("resnet20_fmnist", "range", str(base), str(out), ["weight_shift"],
                           [0.5])
    text = (out / "fidelity_knobs.md").read_text()
    assert text.count("| default (G 64") == 1 and text.count("| per-weight shifts") == 1
    assert "| 0.5 |" in text and "| 1 |" not in text  # only the asked ratio
    lite_knobs.write_table7("resnet20_fmnist", str(base), str(out), 0.5)
    t7 = (out / "table7_resnet20_fmnist.md").read_text()
    assert "| fast greedy | not measured |" in t7  # no greedy rows in this base

    # a finetuned row made from another selection file says so
    from experiments.sweep_table import SweepTable

    t = SweepTable.load(str(base))
    t.meta = t.previous_meta
    for r in list(t.rows.values()):
        t.add(dict(r, method="range+ft"), write=False)
    t.write()
    ft_sel = base / "selections/resnet20_fmnist__range_ft.json"
    ft_sel.write_bytes((base / sel).read_bytes())
    lite_knobs.write_table("resnet20_fmnist", "range", str(base), str(out), [], [0.5])
    text = (out / "fidelity_knobs.md").read_text()
    assert "| + finetuning (distillation on the calibration photos) | 0.5 |" in text
    ft_sel.write_text(ft_sel.read_text().replace('"range"', '"range" ', 1))
    lite_knobs.write_table("resnet20_fmnist", "range", str(base), str(out), [], [0.5])
    assert "finetuned from another selection" in (out / "fidelity_knobs.md").read_text()
    lite_knobs.write_table7("resnet20_fmnist", str(base), str(out), 0.5)
    assert "finetuned from another selection" not in (out / "table7_resnet20_fmnist.md").read_text()
    # the Table 7 analogue's finetuned row follows the same rule
    t = SweepTable.load(str(base))
    t.meta = t.previous_meta
    for r in [r for r in t.rows.values() if r["method"] in ("range", "range+ft")]:
        t.add(dict(r, method=r["method"].replace("range", "evolutionary")), write=False)
    t.write()
    evo_sel = base / "selections/resnet20_fmnist__evolutionary.json"
    evo_sel.write_bytes((base / sel).read_bytes())
    evo_ft = base / "selections/resnet20_fmnist__evolutionary_ft.json"
    evo_ft.write_bytes(ft_sel.read_bytes())  # differs from evo_sel
    lite_knobs.write_table7("resnet20_fmnist", str(base), str(out), 0.5)
    t7 = (out / "table7_resnet20_fmnist.md").read_text()
    assert "| + finetuning (distillation, without dynamic extraction) - finetuned from another" in t7
    evo_ft.write_bytes(evo_sel.read_bytes())
    lite_knobs.write_table7("resnet20_fmnist", str(base), str(out), 0.5)
    t7 = (out / "table7_resnet20_fmnist.md").read_text()
    assert "| + finetuning (distillation, without dynamic extraction) |" in t7
    assert "finetuned from another selection" not in t7


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown"):
        lite_knobs.main(["--base", str(tmp_path), "--out", str(tmp_path), "--variants", "g8"])


@pytest.mark.parametrize("extra, message", [
    (["--variants", "g8"], "--variants: unknown"),
    (["--ratios", "0.5,x"], "--ratios: comma-separated numbers"),
    (["--table-ratios", "half"], "--table-ratios: comma-separated numbers"),
    (["--base", "{tmp}/nowhere"], "no sweep.csv there"),
])
def test_command_line_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message):
    (tmp_path / "sweep.csv").write_text("model,method,ratio\n")
    argv = ["--base", str(tmp_path), "--out", str(tmp_path / "out"), "--table-only"]
    argv += [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert lite_knobs.cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lite_knobs: error: ") and message in err[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_finetuning_variant_starts_from_the_base_selection(tmp_path):
    """``weight_shift_ft`` measures ``<method>+ft`` with per-weight shifts, finetuned from a
    copy of the base selection, and its rows reach the knob table under their own label."""
    base, out = tmp_path / "base", tmp_path / "knobs"
    run_sweep("resnet20_fmnist", base, opts(methods=["range"], ratios=[0.0, 0.5, 1.0]),
              model=tiny())
    table = lite_knobs.run_variant("resnet20_fmnist", "range", str(base), str(out),
                                   "weight_shift_ft", {"ratios": [0.5], "batch": 8}, net=tiny(),
                                   **SYN)
    d = out / "weight_shift_ft"
    assert filecmp.cmp(base / "selections/resnet20_fmnist__range.json",
                       d / "selections/resnet20_fmnist__range_ft.json", shallow=False)
    assert not (d / "selections/resnet20_fmnist__range.json").exists()
    rows = table.table()
    assert {r["method"] for r in rows} == {"range+ft"}
    assert {float(r["ratio"]) for r in rows} == {0.0, 0.5, 1.0}
    assert all(r["sim_bitexact"] == 1 for r in rows)
    assert '"weight_shift": "weight"' in (d / "sweep.json").read_text()
    lite_knobs.write_table("resnet20_fmnist", "range", str(base), str(out), ["weight_shift_ft"],
                           [0.5, 1.0])
    text = (out / "fidelity_knobs.md").read_text()
    assert text.count("| per-weight shifts + finetuning (same selection) |") == 2


@pytest.mark.parametrize("key", ["dynamic", "weight_shift_dynamic"])
def test_dynamic_variants_are_simulated_bit_exact(tmp_path, key):
    """Dynamic extraction (alone or with per-weight shifts) is compiled and simulated like
    every other variant: its rows carry cycles and the simulator's codes equal the runtime's."""
    base, out = tmp_path / "base", tmp_path / "knobs"
    run_sweep("resnet20_fmnist", base, opts(methods=["range"], ratios=[0.0, 0.5, 1.0]),
              model=tiny())
    table = lite_knobs.run_variant("resnet20_fmnist", "range", str(base), str(out), key,
                                   {"ratios": [0.5], "batch": 8}, net=tiny(), **SYN)
    text = (out / key / "sweep.json").read_text()
    assert '"dynamic": true' in text
    assert ('"weight_shift": "weight"' in text) == (key == "weight_shift_dynamic")
    rows = table.table()
    assert {float(r["ratio"]) for r in rows} == {0.0, 0.5, 1.0}
    assert all(r["cycles"] > 0 and r["sim_bitexact"] == 1 for r in rows)
