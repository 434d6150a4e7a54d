import numpy as np

from experiments.plotting import plot_paper_cycles, plot_serving, plot_sweep
from experiments.serving import ServiceProfile, StudyConfig, run_study

from .test_sweep_table import synthetic_rows


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_sweep_plot_file_produced(tmp_path):
    rows = synthetic_rows() + synthetic_rows("hawq") + [
        {**r, "method": "uniform_int4"} for r in synthetic_rows() if r["ratio"] in (0, 1)]
    paths = plot_sweep(rows, tmp_path)
    assert [p.endswith("tradeoff_m.png") for p in paths] == [True]
    assert _is_png(paths[0])


def test_serving_and_cycles_plots(tmp_path):
    prof = ServiceProfile([0.0, 1.0], [0.01, 0.005], [0.9, 0.85])
    study = run_study(prof, StudyConfig(duration_services=300, period_services=100))
    assert _is_png(plot_serving(study, tmp_path / "serving.png"))
    rows = [{"model": m, "ratio": r, "cycles": c} for m in ("a", "b")
            for r, c in zip((0, 0.5, 1), np.array([10, 8, 6]) * 1e6)]
    assert _is_png(plot_paper_cycles(rows, tmp_path / "cycles.png"))
