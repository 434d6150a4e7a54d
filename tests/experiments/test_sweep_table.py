import math

import pytest

from experiments import io
from experiments.sweep_table import COLUMNS, SweepTable, add_derived, speedup_share

FIXED_COLUMNS = ["model", "method", "ratio", "accuracy", "cycles", "latency_us", "speedup",
                "speedup_share", "reorder_share", "agree_8bit", "kl_8bit"]


def synthetic_rows(method="evolutionary", cycles=(1000, 900, 800, 700, 600)):
    return [{"model": "m", "method": method, "ratio": r, "accuracy": 0.9 - 0.01 * i,
             "cycles": c, "reorder_share": 0.01, "agree_8bit": 1 - 0.02 * i,
             "kl_8bit": 0.001 * i, "clock_ghz": 2.0}
            for i, (r, c) in enumerate(zip((0, 0.25, 0.5, 0.75, 1), cycles))]


def test_columns_start_with_the_fixed_columns():
    assert COLUMNS[:len(FIXED_COLUMNS)] == FIXED_COLUMNS
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_speedup_share_from_synthetic_cycles():
    # 50 % 4-bit takes 40 % of the 0 -> 100 % cycle saving (the paper's headline shape)
    rows = add_derived(synthetic_rows(cycles=(1000, 920, 840, 700, 600)))
    by = {r["ratio"]: r for r in rows}
    assert by[0.5]["speedup_share"] == pytest.approx(0.4)
    assert by[0]["speedup_share"] == 0 and by[1]["speedup_share"] == 1
    assert by[1]["speedup"] == pytest.approx(1000 / 600)
    assert by[0.5]["latency_us"] == pytest.approx(840 / 2.0 / 1e3)  # 2 GHz clock
    assert speedup_share(10, 10, 10) != speedup_share(10, 10, 10)  # nan when 0 and 1 tie


def test_csv_and_json_written_with_schema(tmp_path):
    t = SweepTable(tmp_path, meta={"x": 1})
    for r in synthetic_rows() + synthetic_rows("hawq", (1000, 990, 950, 800, 700)):
        t.add(r)
    rows = io.read_csv(tmp_path / "sweep.csv")
    assert list(rows[0].keys()) == COLUMNS
    assert len(rows) == 10
    hawq = [r for r in rows if r["method"] == "hawq" and float(r["ratio"]) == 0.75]
    assert float(hawq[0]["speedup_share"]) == pytest.approx(200 / 300)
    js = io.read_json(tmp_path / "sweep.json")
    assert js["columns"] == COLUMNS and len(js["rows"]) == 10 and js["meta"] == {"x": 1}


def test_resume_reads_done_rows(tmp_path):
    t = SweepTable(tmp_path)
    for r in synthetic_rows()[:3]:
        t.add(r)
    t2 = SweepTable.load(tmp_path)
    assert t2.done("m", "evolutionary", 0.25) and t2.done("m", "evolutionary", "0.5")
    assert not t2.done("m", "evolutionary", 0.75)
    row = t2.get("m", "evolutionary", 0.5)
    assert isinstance(row["cycles"], int) and row["cycles"] == 800
    assert math.isclose(row["accuracy"], 0.88)
    for r in synthetic_rows()[3:]:
        t2.add(r)
    assert len(io.read_csv(tmp_path / "sweep.csv")) == 5


def test_resume_keeps_unlabelled_rows_and_drops_a_row_emptied_since(tmp_path):
    """Rows of unlabelled data (no accuracy) count as done; a row whose CSV cell was
    emptied after the write (it no longer matches sweep.json) is measured again."""
    t = SweepTable(tmp_path)
    for r in synthetic_rows()[:3]:
        t.add({**r, "accuracy": None})
    t2 = SweepTable.load(tmp_path)
    assert t2.dropped == 0 and t2.done("m", "evolutionary", 0.5)
    assert t2.get("m", "evolutionary", 0.5)["accuracy"] is None
    t = SweepTable(tmp_path)
    for r in synthetic_rows()[:3]:
        t.add(r)
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    cells = lines[2].split(",")
    cells[COLUMNS.index("accuracy")] = ""
    lines[2] = ",".join(cells)
    (tmp_path / "sweep.csv").write_text("\n".join(lines) + "\n")
    t3 = SweepTable.load(tmp_path)
    assert t3.dropped == 1 and len(t3.rows) == 2


def test_summary_shows_intervals_and_cycles_per_op_kind():
    from experiments.sweep_table import summary_markdown

    rows = add_derived(synthetic_rows("uniform_int4", (1000, 900, 800, 700, 600))[:1]
                       + synthetic_rows("uniform_int4", (1000, 900, 800, 700, 600))[-1:])
    for r in rows:
        r.update(agree_8bit=0.5, agree_8bit_lo=0.4, agree_8bit_hi=0.6, n_photos=64, n_images=384,
                 cyc_depthwise=640, cyc_pointwise=200, cyc_conv=10, cyc_fc=5, cyc_vector=100,
                 cyc_reorder=7, cyc_dma=300)
    text = summary_markdown("m", rows)
    assert "naive MSB at 100 %" in text  # the display name of uniform_int4
    assert "50.0 % [40.0, 60.0]" in text
    assert "640 (64 %)" in text and "depthwise" in text  # 640 of 1000 cycles at ratio 0
    assert "1.667x" in text  # 1000 / 600 at ratio 1
