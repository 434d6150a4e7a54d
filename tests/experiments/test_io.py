import os

import pytest

from experiments import io


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "sweep.csv"
    io.write_csv(path, [{"a": 1, "b": 2}], ["a", "b"])
    before = path.read_text()

    def rows():
        yield {"a": 3, "b": 4}
        raise KeyboardInterrupt  # interrupted half way through writing

    with pytest.raises(KeyboardInterrupt):
        with io.atomic_open(path, "w") as f:
            f.write("a,b\n")
            for r in rows():
                f.write(f"{r['a']},{r['b']}\n")
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["sweep.csv"]


def test_interrupted_first_write_creates_nothing(tmp_path):
    path = tmp_path / "new.json"
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("{")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_round_trip(tmp_path):
    io.write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert io.read_json(tmp_path / "x.json") == {"a": [1, 2]}
    assert io.read_csv(tmp_path / "missing.csv") == []
    assert io.read_json(tmp_path / "missing.json", 5) == 5
