"""Every bad number, path, file and config the CLI can get: one line on stderr naming the
problem, exit code 2, no traceback, nothing written, and before any work starts."""

import json
import os

import numpy as np
import pytest

import quant
from experiments.cli import main

from .conftest import rewrite_program


def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse usage errors
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return path


@pytest.fixture
def files(tmp_path, small_program):
    """Input files for the table below, made on demand by name."""
    qm, x, prog, good = small_program
    d = tmp_path
    afile = _write(d / "afile", "x")
    x1 = x[:1].numpy()
    np.save(d / "nchw.npy", x1)
    np.save(d / "nhwc.npy", x1.transpose(0, 2, 3, 1))
    nan = x1.copy()
    nan[0, 0, 0, 0] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _write(d / "text.npy", "1 2 3\n")
    data = good.read_bytes()
    _write(d / "empty.npz", b"", "wb")
    _write(d / "trunc.npz", data[: len(data) // 2], "wb")
    flipped = bytearray(data)
    for i in range(len(data) // 3, len(data) // 3 + 64):
        flipped[i] ^= 0xFF
    _write(d / "flipped.npz", bytes(flipped), "wb")
    rewrite_program(good, d / "nokey.npz", drop=("__program__",))
    rewrite_program(good, d / "noregion.npz", drop=("region_1",))
    rewrite_program(good, d / "half.npz", fix_checksum=False,
                    edit_header=lambda h: h.update(instructions=h["instructions"][::2]))
    rewrite_program(good, d / "half_sum.npz",
                    edit_header=lambda h: h.update(instructions=h["instructions"][::2]))

    def big_max4(h):
        h["max4_tables"]["1"][0] = 10**6

    rewrite_program(good, d / "max4.npz", edit_header=big_max4)
    _write(d / "list.json", "[1, 2, 3]")
    sel = quant.select(qm, [x], method="range", ratios=[0, 0.5, 1], progress=False)
    sel.meta["model"] = "resnet20_fmnist"
    sel.save(d / "sel.json")
    sel.meta["model"] = "another_model"
    sel.save(d / "sel_other.json")
    _write(d / "g7.toml", "[npu]\ngroup_size = 7\n")
    _write(d / "g32.toml", "[npu]\ngroup_size = 32\n")
    _write(d / "rows.toml", "[npu]\nrows = 100000\n")
    _write(d / "bad.toml", "[npu\nrows = ")
    return d, afile, good


# (argv with {d} = temp dir and {good} = a valid program, text expected on stderr)
CASES = [
    # unchecked numbers
    ("compile resnet20_fmnist -o {d}/p.npz --batch -1", "--batch must be a positive integer"),
    ("compile resnet20_fmnist -o {d}/p.npz --batch 300 --calib 16", "--batch 300 exceeds --calib 16"),
    ("select resnet20_fmnist -o {d}/s.json --calib -5", "--calib must be a positive integer"),
    ("sweep resnet20_fmnist -o {d}/sw --limit -5", "--limit must be a positive integer"),
    ("sweep resnet20_fmnist -o {d}/sw --limit 0", "--limit must be a positive integer"),
    ("select resnet20_fmnist -o {d}/s.json --fitness-batch 0", "--fitness-batch must be"),
    ("compile resnet20_fmnist -o {d}/p.npz --threads 0", "--threads: must be a positive"),
    ("compile resnet20_fmnist -o {d}/p.npz --batch two", "--batch: invalid int value"),
    # program files
    ("simulate {d}/missing.npz", "not found"),
    ("simulate {d}/empty.npz", "cannot read NPU program"),
    ("simulate {d}/trunc.npz", "cannot read NPU program"),
    ("simulate {d}/flipped.npz", "empty.npz"),  # placeholder replaced below
    ("simulate {d}/nokey.npz", "not a FlexiQ NPU program"),
    ("simulate {d}/noregion.npz", "region arrays"),
    ("simulate {d}/half.npz", "checksum mismatch"),
    ("simulate {d}/half_sum.npz", "instructions, the header says"),
    ("simulate {d}/max4.npz", "exceeds the layer's"),
    ("simulate {good} --ratio 0.3", "no max4 table for ratio 0.3"),
    ("simulate {good} --ratio 1.5", "--ratio must lie in [0, 1]"),
    # selection files
    ("compile resnet20_fmnist -o {d}/p.npz --selection {d}/list.json", "expected a JSON object"),
    ("compile resnet20_fmnist -o {d}/p.npz --selection {d}/sel_other.json",
     "made for model 'another_model'"),
    ("compile resnet20_fmnist -o {d}/p.npz --selection {d}/sel.json --extraction naive",
     "effective extraction"),
    ("compile resnet20_fmnist -o {d}/p.npz --selection {d}/sel.json --npu-config {d}/g32.toml",
     "group size G = 64"),
    ("compile resnet20_fmnist -o {d}/p.npz --selection {d}/sel.json --ratios 0,0.3",
     "--ratios 0.3 not on the selection's ladder (0, 0.5, 1)"),
    # NPU config, checked before calibration
    ("compile resnet20_fmnist -o {d}/p.npz --npu-config {d}/g7.toml", "must be a positive multiple of 8"),
    ("compile resnet20_fmnist -o {d}/p.npz --npu-config {d}/rows.toml", "NPUConfig.rows = 100000"),
    ("sweep resnet20_fmnist -o {d}/sw --npu-config {d}/bad.toml", "not valid TOML"),
    # output paths, checked before the work
    ("compile resnet20_fmnist -o {afile}/p.npz", "is a file, not a directory"),
    ("compile resnet20_fmnist -o {d}", "is a directory, not a file"),
    ("compile resnet20_fmnist -o /proc/flexiq-no/p.npz", "cannot write in"),
    ("sweep resnet20_fmnist -o {afile}", "exists and is not a directory"),
    ("simulate {good} --trace {afile}/t.json", "is a file, not a directory"),
    # --input files
    ("simulate {good} --input {d}/nope.npy", "no such file"),
    ("simulate {good} --input {d}/obj.npy", "not a numeric .npy array"),
    ("simulate {good} --input {d}/text.npy", "not a numeric .npy array"),
    ("simulate {good} --input {d}/nan.npy", "NaN or infinite"),
    ("simulate {good} --input {d}/nhwc.npy", "looks like NHWC"),
]
CASES[11] = ("simulate {d}/flipped.npz", "flipped.npz")


@pytest.mark.parametrize("argv,expected", CASES, ids=[c[0].split()[0] + ":" + c[1][:30]
                                                      for c in CASES])
def test_bad_input_is_one_line_exit_2(argv, expected, files, capsys):
    d, afile, good = files
    before = set(os.listdir(d))
    argv = argv.format(d=d, afile=afile, good=good).split()
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err and "calibrate" not in err + out
    assert set(os.listdir(d)) == before  # nothing written, not even a temporary file


def test_float_nchw_input_runs_and_equals_encoded_codes(files, capsys, small_program):
    d, _, good = files
    code, out, err = run_cli(["simulate", good, "--input", d / "nchw.npy", "--json",
                              "--ratio", "0.5"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["format_version"] == 1 and rep["ratio"] == 0.5 and rep["total_cycles"] > 0


def test_every_command_has_threads(capsys):
    from experiments.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert any("--threads" in a.option_strings for a in p._actions), name
