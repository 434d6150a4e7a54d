"""experiments/confidence_strata.py: agreement per 8-bit confidence bin, and its door."""

import numpy as np
import pytest

from experiments import confidence_strata as cs


def test_strata_counts_and_agreement_per_bin():
    conf = np.array([0.1, 0.2, 0.4, 0.45, 0.9, 1.0])
    ref = np.array([1, 2, 3, 4, 5, 6])
    top = np.array([1, 0, 3, 0, 5, 6])  # wrong on views 1 and 3
    photo = np.array([0, 0, 1, 1, 2, 2])
    s = cs.strata(ref, conf, top, photo, bins=(0.0, 0.3, 0.5, 1.0))
    assert [x["views"] for x in s] == [2, 2, 2, 6]
    assert [x["agree"] for x in s] == [0.5, 0.5, 1.0, pytest.approx(4 / 6)]
    assert s[-1]["bin"] == "all"
    for x in s:
        assert x["lo"] <= x["agree"] <= x["hi"]
    assert s[2]["lo"] == s[2]["hi"] == 1.0  # every resample agrees
    assert sum(x["views"] for x in s[:-1]) == s[-1]["views"]  # p = 1.0 falls in the last bin


def test_empty_bin_and_table():
    s = cs.strata([1, 2], [0.1, 0.2], [1, 2], [0, 1], bins=(0.0, 0.5, 1.0))
    assert s[1]["views"] == 0 and np.isnan(s[1]["agree"])
    md = cs.table("m", (0.0, 0.5, 1.0), {"views": [2, 0]}, {"fp32@-": s, "evolutionary@0.5": s})
    assert "| evolutionary | 0.5 | 100.0 % [100.0, 100.0] | - | 100.0 % [100.0, 100.0] |" in md
    assert "p8 in [0, 0.5)" in md and "p8 in [0.5, 1]" in md


def test_softmax_top():
    top, p = cs.softmax_top(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]))
    assert top.tolist() == [0, 1]
    np.testing.assert_allclose(p, [0.5, 0.75])


def test_broken_state_file_stops_in_one_line(tmp_path, capsys):
    (tmp_path / "selections").mkdir()
    (tmp_path / "o.md.json").write_text("{not json")
    with pytest.raises(SystemExit) as e:
        cs.main(["efficientnet_lite0", "--sweep", str(tmp_path), "-o", str(tmp_path / "o.md"),
                 "--methods", "uniform_int4"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "o.md.json: not a saved state" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.md").exists()


def test_bin_masks_partition_the_views():
    conf = np.array([0.0, 0.3, 0.29, 1.0, 0.5])
    masks = cs.bin_masks(conf, (0.0, 0.3, 0.5, 1.0))
    assert [m.nonzero()[0].tolist() for m in masks] == [[0, 2], [1], [3, 4]]


@pytest.mark.parametrize("args,msg", [
    (["--bins", "0,0.9,0.5"], "--bins"),
    (["--bins", "a,b"], "--bins"),
    (["--methods", "nosuch"], "unknown method"),
    (["--ratios", "2"], "ratio"),
    (["--methods", "evolutionary"], "no saved selection"),
])
def test_bad_arguments_stop_in_one_line(tmp_path, capsys, args, msg):
    with pytest.raises(SystemExit) as e:
        cs.main(["efficientnet_lite0", "--sweep", str(tmp_path), "-o", str(tmp_path / "o.md"),
                 *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.md").exists()
