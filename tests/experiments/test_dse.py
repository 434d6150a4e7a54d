"""`flexiq dse`: the space (grid, random, TOML), invalid points, the table against the
simulator, resuming, the CLI, and the local process-pool backend."""

import os

import pytest

import compiler
import npu_sim
from experiments.cli import main
from experiments.dse import job as dse_job
from experiments.dse.runner import run_dse
from experiments.dse.space import (
    SpaceError,
    build_space,
    grid_points,
    load_toml,
    parse_grid,
    parse_ranges,
    random_points,
)

MODEL = "resnet20_fmnist"
TIMES = ("job_seconds", "prepare_seconds")


def strip_times(rows):
    return [{k: v for k, v in r.items() if k not in TIMES} for r in rows]


def test_grid_is_the_product_and_invalid_points_keep_their_reason():
    grid = parse_grid(["rows=16,32", "cols=0,32", "timing=default,scalesim",
                       "vector_costs.requant=1,2"])
    assert grid["rows"] == [16, 32] and grid["timing"] == ["default", "scalesim"]
    pts = grid_points(grid)
    assert len(pts) == 16 and len({p.config_id for p in pts}) == 16
    bad = [p for p in pts if p.config is None]
    assert len(bad) == 8 and all("NPUConfig.cols must be > 0" in p.error for p in bad)
    ok = next(p for p in pts if p.config is not None and p.knobs["vector_costs.requant"] == 2)
    assert ok.config.vector_costs["requant"] == 2


@pytest.mark.parametrize("item", ["nope=1", "rows", "rows=", "rows=abc", "rows=16,1.5",
                                  "double_buffer=1", "clock_ghz=fast"])
def test_bad_grid_items_are_errors(item):
    with pytest.raises(SpaceError):
        parse_grid([item])


def test_random_points_are_seeded_and_in_range():
    ranges = parse_ranges(["rows=8:64", "clock_ghz=0.5:2"])
    grid = {"cols": [16, 32]}
    a = random_points(20, 3, grid, ranges)
    b = random_points(20, 3, grid, ranges)
    c = random_points(20, 4, grid, ranges)
    assert [p.knobs for p in a] == [p.knobs for p in b] != [p.knobs for p in c]
    for p in a:
        assert 8 <= p.knobs["rows"] <= 64 and isinstance(p.knobs["rows"], int)
        assert 0.5 <= p.knobs["clock_ghz"] <= 2 and p.knobs["cols"] in (16, 32)
    with pytest.raises(SpaceError):
        parse_ranges(["rows=64:8"])


def test_toml_space_equals_the_command_line(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('models = ["resnet20_fmnist"]\nratios = [0, 1]\n'
                 '[grid]\nrows = [16, 32]\ndram_bytes_per_cycle = [8, 32]\n'
                 '[base]\nvector_lanes = 16\n')
    spec = load_toml(f)
    a = build_space(spec["models"], spec["ratios"], grid=spec["grid"], base=spec["base"])
    b = build_space([MODEL], [0, 1], grid=parse_grid(["rows=16,32", "dram_bytes_per_cycle=8,32"]),
                    base={"vector_lanes": 16})
    assert [p.knobs for p in a.points] == [p.knobs for p in b.points]
    assert all(p.config.vector_lanes == 16 for p in a.points)
    # the default NPU (32 x 32, 32 B/cycle) is in this grid, so it is not added again
    assert len(a.points) == 4 and a.default_id in {p.config_id for p in a.points}
    (tmp_path / "bad.toml").write_text("[grid]\nrowz = [1]\n")
    with pytest.raises(SpaceError, match="rowz"):
        load_toml(tmp_path / "bad.toml")


def _space(**kw):
    grid = parse_grid(["rows=16,32", "inp_kib=1,256", "acc_kib=0,256"])
    return build_space([MODEL], [0.0, 0.5, 1.0], grid=grid, **kw)


def test_local_sweep_matches_the_simulator_and_resumes(tmp_path):
    space = _space()
    out = run_dse(space, tmp_path, backend="local", workers=2, progress=False)
    rows = out["rows"]
    assert len(rows) == len(space.points) * 3 and not out["failed"]
    by = {(r["rows"], r["inp_kib"], r["acc_kib"], r["ratio"]): r for r in rows}
    # a configuration the NPUConfig rejects, and one the compiler cannot tile
    assert by[(16, 256, 0, 0.0)]["status"] == "invalid"
    assert "acc_kib must be > 0" in by[(16, 256, 0, 0.0)]["reason"]
    assert by[(16, 1, 256, 0.5)]["status"] == "invalid"
    assert "TilingError" in by[(16, 1, 256, 0.5)]["reason"]
    # valid rows: the full simulation of the same program gives the same numbers
    prep = dse_job.prepared(MODEL, (("group_size", 64),), 0, 2)
    qm, x = prep.qm, prep.x
    cfg = npu_sim.NPUConfig(rows=16)
    prog = compiler.compile(qm, x, config=cfg, ratios=[0.0, 0.5, 1.0], name=MODEL)
    xin = compiler.encode_input(prog, x)
    from experiments import npu_run

    for r in (0.0, 1.0):
        full = npu_sim.simulate(prog, xin, max4=npu_run.max4_list(prog, qm, r), config=cfg)
        row = by[(16, 256, 256, r)]
        assert row["status"] == "ok" and row["cycles"] == full.cycles
        assert row["dram_bytes"] == full.stats["dram_read_bytes"] + full.stats["dram_write_bytes"]
        assert row["pe_count"] == 16 * 32 and row["sram_kib"] == 256 + 512 + 256 + 64
        use = sum(full.stats["sram_high_water_bytes"].values()) / 1024
        assert row["sram_use_kib"] == pytest.approx(use) and 0 < use <= row["sram_kib"]
    assert by[(16, 256, 256, 1.0)]["cycles"] < by[(16, 256, 256, 0.0)]["cycles"]
    assert sum(1 for r in rows if r["is_default"]) == 3
    assert os.path.exists(out["plots"][0])
    again = run_dse(space, tmp_path, backend="local", workers=2, progress=False)
    assert again["ran"] == 0 and strip_times(again["rows"]) == strip_times(rows)


@pytest.mark.parametrize("text,needle", [("models = 3", "models must be a list"),
                                         ("ratios = 'half'", "ratios must be a list"),
                                         ("seed = 1.5", "seed must be an integer"),
                                         ("[grid]\nrows = ['big']", "rows takes int")])
def test_bad_toml_space_values_are_errors(tmp_path, text, needle):
    (tmp_path / "s.toml").write_text(text + "\n")
    with pytest.raises(SpaceError, match=needle):
        load_toml(tmp_path / "s.toml")


def test_cli_dse_bad_input_exits_2(tmp_path, capsys):
    assert main(["dse", MODEL, "--grid", "rows=16", "bogus=1", "-o", str(tmp_path)]) == 2
    assert "unknown knob 'bogus'" in capsys.readouterr().err
    assert main(["dse", "no_such_model", "-o", str(tmp_path)]) == 2
    assert not os.path.exists(tmp_path / "dse.csv")


def test_numeric_knobs_bring_fidelity(tmp_path):
    """Sweeping G and the shift granularity: rows carry the integer runtime's agreement with
    8-bit on the model's own evaluation images (1 at ratio 0), equal for every NPU point
    of one quantization."""
    grid = parse_grid(["group_size=32,64", "weight_shift=group,weight", "rows=16,32"])
    space = build_space([MODEL], [0.0, 1.0], grid=grid)
    assert space.numeric
    out = run_dse(space, tmp_path, backend="local", workers=2, progress=False,
                  plot_front=False, fidelity_images=48)
    ok = [r for r in out["rows"] if r["status"] == "ok"]
    assert len(ok) == 16 and not out["failed"]
    for r in ok:
        assert r["fidelity_note"] == ""
        if r["ratio"] == 0.0:
            assert r["agree_8bit"] == 1.0 and r["kl_8bit"] == pytest.approx(0.0, abs=1e-12)
        else:
            assert 0.0 < r["agree_8bit"] <= 1.0 and r["kl_8bit"] > 0.0
    fid = {}
    for r in ok:
        fid.setdefault((r["group_size"], r["weight_shift"], r["ratio"]), set()).add(
            (r["agree_8bit"], r["kl_8bit"]))
    assert all(len(v) == 1 for v in fid.values())  # the NPU shape does not change numerics
    # G changes the numerics: the two G give different fidelity at ratio 1
    assert fid[(32, "group", 1.0)] != fid[(64, "group", 1.0)]
    # only G and the quantizer knobs are quantizations: without them, no fidelity columns
    plain = build_space([MODEL], [0.0], grid=parse_grid(["rows=16,32"]))
    assert not plain.numeric


def test_pareto_front():
    from experiments.dse.pareto import front

    pts = [(1, 5), (2, 3), (2, 4), (3, 3), (0.5, 10), (4, 1), (4, 1)]
    assert [pts[i] for i in front(pts)] == [(0.5, 10), (1, 5), (2, 3), (4, 1)]
