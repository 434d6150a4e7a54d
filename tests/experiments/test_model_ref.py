"""Users' own models: every model reference and calibration source end to end through the
CLI, names carried into programs and tables, and one-line errors for bad references."""

import os

import numpy as np
import pytest
import torch
from torch import nn

import compiler
import npu_sim
import quant
from experiments import io
from experiments.cli import main
from experiments.data_source import Preprocess, resolve_data, split_indices
from experiments.model_ref import resolve

SHAPE = (3, 8, 8)
FACTORY_SRC = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d({c}, 32, 3, padding=1)
        self.body = nn.Conv2d(32, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        y = torch.relu(self.body(y) + y)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def build():
    torch.manual_seed(0)
    return Net()


def broken():
    raise RuntimeError("no weights here")


def not_a_model():
    return {{"weights": 1}}
'''


def _write_factory(tmp_path, channels=3):
    p = tmp_path / "my_net.py"
    p.write_text(FACTORY_SRC.format(c=channels))
    return p


def _module(tmp_path, channels=3):
    return resolve(f"{_write_factory(tmp_path, channels)}:build",
                   input_shape=(channels, 8, 8)).module


def _compile(args, tmp_path, name="prog.npz"):
    out = tmp_path / name
    rc = main(["compile", *map(str, args), "--calib", "16", "-o", str(out)])
    assert rc == 0
    return npu_sim.Program.load(str(out))


def _one_line_error(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def _export_pt2(model, path):
    ep = torch.export.export(model, (torch.randn(2, *SHAPE),))
    torch.export.save(ep, str(path))


def _export_onnx(model, path):
    import warnings

    with warnings.catch_warnings():  # the TorchScript exporter needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (torch.randn(1, *SHAPE),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"])


# ------------------------------------------------------------------ model references
def test_python_factory_compiles_with_its_own_name(tmp_path):
    f = _write_factory(tmp_path)
    prog = _compile([f"{f}:build", "--input-shape", "3,8,8", "--calib-data", "synthetic"],
                    tmp_path)
    assert prog.meta["model"] == "build"
    assert prog.meta["model_ref"]["kind"] == "python"
    assert prog.meta["input"]["shape"] == [1, 3, 8, 8]
    prog = _compile([f"{f}:build", "--input-shape", "3,8,8", "--calib-data", "synthetic",
                     "--name", "my-net"], tmp_path, "named.npz")
    assert prog.meta["model"] == "my-net"


def test_registry_name_still_works(tmp_path):
    prog = _compile(["resnet20_fmnist", "--calib-data", "synthetic"], tmp_path)
    assert prog.meta["model"] == "resnet20_fmnist"
    assert prog.meta["model_ref"]["kind"] == "registry"


def _bit_exact(ref, calib):
    qm = quant.quantize(ref.module, calib, progress=False)
    x = torch.cat(calib)[:1]
    prog = compiler.compile(qm, x, ratios=(0.0, 1.0), name=ref.name)
    for r in (0.0, 1.0):
        qm.set_ratio(r)
        want = qm.run(x).codes.numpy()
        got = npu_sim.simulate(prog, compiler.encode_input(prog, x), ratio=r).output
        np.testing.assert_array_equal(got.reshape(want.shape), want)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_exported_files_load_compute_the_same_and_compile(tmp_path, fmt):
    model = _module(tmp_path).eval()
    path = tmp_path / f"exported_net.{fmt}"
    (_export_pt2 if fmt == "pt2" else _export_onnx)(model, path)
    # the file records its input shape: no --input-shape needed
    ref = resolve(str(path))
    assert ref.name == "exported_net" and ref.input_shape == SHAPE and ref.kind in ("export", "onnx")
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(ref.module(x), model(x), rtol=1e-5, atol=1e-5)
    _bit_exact(ref, resolve_data("synthetic", ref).calibration(16))
    prog = _compile([path, "--calib-data", "synthetic"], tmp_path)
    assert prog.meta["model"] == "exported_net"


def test_pickled_whole_module_needs_no_arch(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                      nn.Linear(16 * 64, 10)).eval()
    torch.save(m, tmp_path / "seq.pt")
    prog = _compile([tmp_path / "seq.pt", "--input-shape", "3,8,8", "--calib-data", "synthetic"],
                    tmp_path)
    assert prog.meta["model"] == "seq"


# --------------------------------------------------------------- calibration sources
def test_calibration_sources(tmp_path):
    f = _write_factory(tmp_path)
    spec = f"{f}:build"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, *SHAPE)).astype(np.float32)
    np.save(tmp_path / "calib.npy", x)
    torch.save({"x": torch.from_numpy(x), "y": torch.arange(20) % 10}, tmp_path / "calib.pt")
    from PIL import Image

    for k in range(2):  # a labelled folder: one sub-folder per class
        d = tmp_path / "imgs" / f"class{k}"
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(d / f"{i}.png")
    for data in ("synthetic", tmp_path / "calib.npy", tmp_path / "calib.pt", tmp_path / "imgs"):
        prog = _compile([spec, "--input-shape", "3,8,8", "--calib-data", data, "--mean",
                         "0.5", "--std", "0.25"], tmp_path, f"p{abs(hash(str(data)))}.npz")
        assert prog.meta["model_ref"]["calib_data"].startswith(str(data))
    ref = resolve(spec, input_shape=SHAPE)
    src = resolve_data(str(tmp_path / "imgs"), ref, Preprocess((0.5,), (0.25,), None))
    ev = src.evaluation()
    side = split_indices(6)
    assert ev.x.shape == (2, *SHAPE)  # a quarter of the 6 images, the rest calibrates
    assert ev.labels.tolist() == [[0, 0, 0, 1, 1, 1][i] for i in side["eval"].tolist()]
    # centre crop of the shorter side, scaled to [0, 1], then (x - mean) / std
    assert float(ev.x.min()) >= -2.0 - 1e-6 and float(ev.x.max()) <= 2.0 + 1e-6
    cal = torch.cat(src.calibration(16))
    assert len(cal) == 4 and not any(torch.equal(c, e) for c in cal for e in ev.x)
    npy_src = resolve_data(str(tmp_path / "calib.npy"), ref)
    npy = npy_src.calibration(16)
    side = split_indices(20)
    assert sum(len(b) for b in npy) == 15  # 20 samples: 5 held out for evaluation
    assert torch.equal(npy[0][0], torch.from_numpy(x[int(side["calib"][0])]))
    assert torch.equal(npy_src.evaluation().x, torch.from_numpy(x[side["eval"].numpy()]))


def test_calibration_and_evaluation_never_share_a_sample():
    for n in (2, 3, 7, 20, 101):
        side = split_indices(n)
        cal, ev = set(side["calib"].tolist()), set(side["eval"].tolist())
        assert cal and ev and not cal & ev and cal | ev == set(range(n))
    with pytest.raises(quant.errors.ConfigError, match="at least 2"):
        split_indices(1)


def test_registry_data_set_for_a_user_model(tmp_path):
    f = _write_factory(tmp_path, channels=1)
    prog = _compile([f"{f}:build", "--input-shape", "1,28,28", "--calib-data", "fashion-mnist"],
                    tmp_path)
    assert prog.meta["model_ref"]["calib_data"] == "fashion-mnist"
    ref = resolve(f"{f}:build", input_shape=(1, 28, 28))
    ev = resolve_data("fashion-mnist", ref).evaluation(8, num_outputs=10)
    assert ev.labels is not None and ev.x.shape == (8, 1, 28, 28)
    # ImageNet photos at the model's own size; labels only for a 1000-way model
    rgb = resolve(f"{_write_factory(tmp_path)}:build", input_shape=(3, 16, 16))
    src = resolve_data("imagenet", rgb)
    assert src.calibration(6)[0].shape == (6, 3, 16, 16)
    assert src.evaluation(4, num_outputs=10).labels is None
    assert len(src.evaluation(4, num_outputs=1000).labels) == 4
    prog = _compile([f"{tmp_path / 'my_net.py'}:build", "--input-shape", "3,16,16",
                     "--calib-data", "imagenet"], tmp_path, "photos.npz")
    assert prog.meta["model_ref"]["calib_data"] == "imagenet"


# ------------------------------------------------------------------- select / sweep
def test_select_and_sweep_carry_the_user_name(tmp_path, capsys):
    f = _write_factory(tmp_path)
    spec = f"{f}:build"
    sel = tmp_path / "sel.json"
    assert main(["select", spec, "--input-shape", "3,8,8", "--calib-data", "synthetic",
                 "--calib", "16", "--method", "random", "--ratios", "0,0.5,1", "-o", str(sel),
                 "--quiet"]) == 0
    assert quant.Selection.load(str(sel)).meta["model"] == "build"
    prog = _compile([spec, "--input-shape", "3,8,8", "--calib-data", "synthetic", "--selection",
                     sel, "--ratios", "0,0.5,1"], tmp_path)
    assert prog.meta["model"] == "build"

    x = np.random.default_rng(1).normal(size=(12, *SHAPE)).astype(np.float32)
    torch.save({"x": torch.from_numpy(x), "y": torch.arange(12) % 10}, tmp_path / "lab.pt")
    np.save(tmp_path / "unlab.npy", x)
    common = ["--input-shape", "3,8,8", "--calib-images", "12", "--ratios", "0,1", "--method",
              "range", "--batch", "4", "--check-images", "1", "--quiet"]
    out = tmp_path / "sweep"
    assert main(["sweep", spec, "--calib-data", str(tmp_path / "lab.pt"), "-o", str(out),
                 *common]) == 0
    rows = io.read_csv(out / "sweep.csv")
    assert {r["model"] for r in rows} == {"build"} and all(r["accuracy"] != "" for r in rows)
    assert all(r["sim_bitexact"] == "1" for r in rows)
    assert (out / "programs" / "build__range.npz").exists()
    capsys.readouterr()
    assert main(["sweep", spec, "--calib-data", str(tmp_path / "unlab.npy"), "--name", "mine",
                 "-o", str(out), *common]) == 0
    text = capsys.readouterr().out
    assert "has no labels" in text
    rows = [r for r in io.read_csv(out / "sweep.csv") if r["model"] == "mine"]
    assert len(rows) == 2 and all(r["accuracy"] == "" and r["agree_8bit"] != "" for r in rows)


def test_pipeline_takes_a_user_model(tmp_path):
    f = _write_factory(tmp_path)
    out = tmp_path / "pipe"
    assert main(["pipeline", f"{f}:build", "--input-shape", "3,8,8", "--calib-data", "synthetic",
                 "--limit", "4", "--calib-images", "12", "--ratios", "0,1", "--method", "range",
                 "--batch", "4", "--check-images", "1", "--quiet", "-o", str(out)]) == 0
    assert "build" in (out / "summary.md").read_text()
    assert "no labels" in (out / "summary.md").read_text()


# ---------------------------------------------------------------------------- errors
def test_bad_references_are_one_line_exit_2(tmp_path, capsys):
    f = _write_factory(tmp_path)
    out = tmp_path / "never.npz"
    base = ["--calib-data", "synthetic", "--calib", "8", "-o", str(out)]
    cases = [
        ([str(tmp_path / "missing.py") + ":build", "--input-shape", "3,8,8"], "no such file"),
        ([f"{f}:nope", "--input-shape", "3,8,8"], "no factory named 'nope'"),
        ([f"{f}:not_a_model", "--input-shape", "3,8,8"], "not a torch.nn.Module"),
        ([f"{f}:broken", "--input-shape", "3,8,8"], "no weights here"),
        ([str(f), "--input-shape", "3,8,8"], "file.py:factory"),
        ([f"{f}:build"], "--input-shape"),
        ([f"{f}:build", "--input-shape", "3,8"], "does not run on input shape 3,8"),
        ([f"{f}:build", "--input-shape", "3,-8,8"], "--input-shape"),
        ([f"{f}:build", "--input-shape", "3,x"], "--input-shape must be"),
        ([f"{f}:build", "--input-shape", "3,,8,8"], "--input-shape must be"),
        (["not_a_model_name"], "not a registry name"),
    ]
    for argv, needle in cases:
        _one_line_error(capsys, ["compile", *argv, *base], needle)
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    _one_line_error(capsys, ["compile", str(tmp_path / "bad.onnx"), "--input-shape", "3,8,8",
                             *base], "bad.onnx", "not a valid ONNX model")
    (tmp_path / "bad.pt2").write_bytes(b"nope")
    _one_line_error(capsys, ["compile", str(tmp_path / "bad.pt2"), *base], "torch.export")
    class Sig(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x).flatten(1)

    _export_pt2(Sig(), tmp_path / "sig.pt2")
    _one_line_error(capsys, ["compile", str(tmp_path / "sig.pt2"), *base], "sigmoid",
                    "not supported")
    (tmp_path / "bad.py").write_text("import not_a_module_anywhere\n")
    _one_line_error(capsys, ["compile", str(tmp_path / "bad.py") + ":f", "--input-shape",
                             "3,8,8", *base], "importing it failed")
    # calibration sources that do not fit
    np.save(tmp_path / "wrong.npy", np.zeros((4, 3, 9, 9), np.float32))
    spec = f"{f}:build"
    for data, needle in [(tmp_path / "wrong.npy", "do not match"),
                         ("auto", "--calib-data"), ("fashion-mnist", "1,28,28"),
                         (tmp_path / "none.npy", "no such file"), ("bogus", "not a folder")]:
        _one_line_error(capsys, ["compile", spec, "--input-shape", "3,8,8", "--calib-data",
                                 str(data), "--calib", "8", "-o", str(out)], needle)
    assert not os.path.exists(out)


def test_broken_pt2_prints_no_traceback_at_all(tmp_path):
    """torch.export.load logs a traceback before raising; the CLI shows only its own line
    (a real process: torch's log handler writes to the stderr it found at start-up)."""
    import subprocess
    import sys

    (tmp_path / "bad.pt2").write_bytes(b"nope")
    p = subprocess.run([sys.executable, "-m", "experiments.cli", "compile",
                        str(tmp_path / "bad.pt2"), "--calib", "4", "-o", str(tmp_path / "p.npz")],
                       capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    err = p.stderr.strip()
    assert p.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
