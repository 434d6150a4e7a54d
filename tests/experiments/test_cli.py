import json
import os

from experiments import io
from experiments.cli import main
from experiments.sweep_table import SweepTable

from .test_sweep_table import synthetic_rows


def _sweep_dir(tmp_path):
    t = SweepTable(tmp_path)
    for r in synthetic_rows(cycles=(100000, 90000, 80000, 70000, 50000)):
        t.add(r, write=False)
    t.write()
    return tmp_path


def test_plot_command_writes_png(tmp_path, capsys):
    d = _sweep_dir(tmp_path)
    assert main(["plot", str(d)]) == 0
    assert os.path.exists(d / "tradeoff_m.png")
    assert "tradeoff_m.png" in capsys.readouterr().out


def test_plot_command_without_table_is_a_clear_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no sweep table" in capsys.readouterr().err


def test_serve_sim_command(tmp_path, capsys):
    d = _sweep_dir(tmp_path)
    out = tmp_path / "serve"
    assert main(["serve-sim", str(d), "-o", str(out), "--int8-ms", "100", "--requests", "800",
                 "--period", "200"]) == 0
    rows = io.read_csv(out / "serving.csv")
    assert {(r["trace"], r["policy"]) for r in rows} == {
        (t, p) for t in ("poisson", "fluctuating") for p in ("int8", "int4_100", "adaptive")}
    summary = json.loads((out / "serving.json").read_text())
    assert summary["profile"]["service_ms"][0] == 100.0
    assert os.path.exists(out / "serving.png")


def test_sweep_rejects_bad_ratios_and_methods(tmp_path, capsys):
    assert main(["sweep", "resnet20_fmnist", "--ratios", "0,2", "-o", str(tmp_path), "--no-sim"]) == 2
    assert "outside [0, 1]" in capsys.readouterr().err
    assert main(["sweep", "resnet20_fmnist", "--method", "magic", "-o", str(tmp_path), "--no-sim"]) == 2
    assert "unknown method" in capsys.readouterr().err


TIMING_KEYS = ("seconds", "wall_seconds")  # wall-clock figures: the only fields a rerun may change


def _select_in_process(tmp_path, name, hashseed):
    """``flexiq select`` in a fresh interpreter with its own hash seed; the saved selection
    without its timing fields."""
    import subprocess
    import sys

    out = tmp_path / f"{name}.json"
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "experiments.cli", "select", "resnet20_fmnist",
                        "--method", "evolutionary", "--population", "6", "--generations", "2",
                        "--calib", "96", "--threads", "1", "--quiet", "-o", str(out)],
                       capture_output=True, text=True, timeout=600, env=env,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert p.returncode == 0, p.stderr
    sel = json.loads(out.read_text())
    for k in TIMING_KEYS:
        assert k in sel["meta"]
        del sel["meta"][k]
    return sel


def test_select_gives_the_same_selection_in_other_processes(tmp_path):
    """Same seed, two interpreters with different hash seeds (set and dict orders, object
    addresses): the same fast evolutionary selection, fitness values and evaluation count."""
    a = _select_in_process(tmp_path, "a", 1)
    b = _select_in_process(tmp_path, "b", 2)
    assert a["meta"]["fitness_evaluations"] > 0
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
