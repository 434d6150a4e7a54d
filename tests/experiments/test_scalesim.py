"""The SCALE-Sim drop-in against SCALE-Sim 3.0.0's own reports (goldens made by
scripts/make_scalesim_golden.py), its closed forms against a fold-by-fold count, its input
errors, and the topology export."""

import csv
import math
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cli import main
from experiments.scalesim import (
    Layer,
    UnsupportedScaleSimError,
    layer_report,
    read_config,
    read_topology,
    simulate,
)
from experiments.scalesim.export import model_topology
from experiments.scalesim.reports import compute_report, detail_report
from npu_sim import scalesim_cycles
from quant.errors import ConfigError

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "scalesim")
GOLDEN = os.path.join(FIX, "golden")
PAIRS = sorted(os.listdir(GOLDEN)) if os.path.isdir(GOLDEN) else []
KIND = {"conv_small": "conv", "gemm_small": "gemm", "resnet50": "conv"}


def _read(path):
    with open(path, newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f)]
    return rows[0], rows[1:]


def _ours(pair, tmp_path):
    cfg_name, topo = pair.split("__")
    out = tmp_path / "out"
    assert main(["scalesim", "-c", os.path.join(FIX, "configs", cfg_name + ".cfg"),
                 "-t", os.path.join(FIX, topo + ".csv"), "-i", KIND[topo], "-p", str(out),
                 "--quiet"]) == 0
    return out / cfg_name


def test_goldens_cover_configs_and_topologies():
    # non-square arrays, several SRAM sizes, conv and GEMM forms, ResNet-50's layers
    assert {"ws_8x8__conv_small", "ws_16x4__gemm_small", "ws_4x12__conv_small",
            "ws_128x128__resnet50"} <= set(PAIRS)


@pytest.mark.parametrize("pair", PAIRS)
def test_reports_match_scalesim_column_by_column(pair, tmp_path):
    ours = _ours(pair, tmp_path)
    for name, exact, close in (
            ("COMPUTE_REPORT.csv", (0, 2, 3, 4), (5, 6)),
            ("BANDWIDTH_REPORT.csv", (0, 1, 2, 3), ()),
            ("DETAILED_ACCESS_REPORT.csv", tuple(range(10)), ())):
        gh, grows = _read(os.path.join(GOLDEN, pair, name))
        oh, orows = _read(ours / name)
        assert oh == gh, name
        assert len(orows) == len(grows) > 0
        for o, g in zip(orows, grows):
            for c in exact:  # cycles, counts, and divisions of exact integers
                assert o[c] == g[c], (name, gh[c], o[0])
            for c in close:  # means over folds: SCALE-Sim sums fold by fold
                assert math.isclose(float(o[c]), float(g[c]), rel_tol=1e-10), (name, gh[c])
            for c in range(len(gh) - 1):
                if c not in exact + close:
                    assert o[c] == "", (name, gh[c])  # DRAM-model fields stay empty


def _folds(K, N, R, C):
    for fc in range(-(-N // C)):
        for fr in range(-(-K // R)):
            yield min(R, K - fr * R), min(C, N - fc * C)


@settings(max_examples=60, deadline=None)
@given(K=st.integers(1, 300), N=st.integers(1, 300), T=st.integers(1, 300),
       R=st.integers(1, 40), C=st.integers(1, 40))
def test_closed_forms_equal_fold_by_fold_counts(K, N, T, R, C):
    r = layer_report(Layer.gemm("g", T, N, K), R, C)
    folds = list(_folds(K, N, R, C))
    F, P = len(folds), 2 * R + C + T - 2
    assert r.total_cycles == F * P - 1 == scalesim_cycles(K, N, T, R, C) - 1
    assert r.ifmap_sram_reads == sum(T * k for k, _ in folds)
    assert r.ofmap_sram_writes == sum(T * n for _, n in folds)
    assert r.filter_sram_reads == sum(k * n for k, n in folds)
    assert math.isclose(r.mapping_eff, 100 * math.fsum(k * n / (R * C) for k, n in folds) / F,
                        rel_tol=1e-12)
    util = math.fsum(k * n * T / (R * C * (P + C - 1)) for k, n in folds) / F
    assert math.isclose(r.compute_util, 100 * util, rel_tol=1e-12)
    assert r.filter_sram_stop - r.filter_sram_start == (F - 1) * P + min(R, K) - 1


@pytest.mark.parametrize("cfg", ["os_32x32", "is_32x32"])
def test_output_and_input_stationary_are_named_errors(cfg, tmp_path, capsys):
    path = os.path.join(FIX, "configs", cfg + ".cfg")
    with pytest.raises(UnsupportedScaleSimError, match="Dataflow"):
        read_config(path)
    assert main(["scalesim", "-c", path, "-t", os.path.join(FIX, "conv_small.csv"),
                 "-p", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and path in err and "stationary" in err
    assert not (tmp_path / "o").exists()


def _cfg(tmp_path, **changes):
    text = open(os.path.join(FIX, "configs", "ws_8x8.cfg")).read()
    for old, new in changes.items():
        text = text.replace(old, new)
    p = tmp_path / "x.cfg"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("old,new,msg", [
    ("ArrayHeight:    8", "ArrayHeight:    eight", "ArrayHeight must be an integer"),
    ("ArrayWidth:     8", "ArrayWidth:     0", "ArrayWidth must be > 0"),
    ("ArrayHeight:    8", "", "missing field [architecture_presets] ArrayHeight"),
    ("Dataflow : ws", "Dataflow : xs", "Dataflow must be one of"),
    ("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER", "USER"),
    ("SparsitySupport : false", "SparsitySupport : true", "SparsitySupport"),
    ("[general]", "general", "not a SCALE-Sim INI file"),
])
def test_bad_config_names_file_and_field(tmp_path, old, new, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")) as e:
        read_config(_cfg(tmp_path, **{old: new}))
    assert "x.cfg" in str(e.value)


@pytest.mark.parametrize("row,kind,msg", [
    ("c, 14, 14, 3, 3, five, 12, 1,", "conv", ":2: channels must be an integer"),
    ("c, 14, 14, 3, 3, 5, 12,", "conv", ":2: expected 8 fields"),
    ("c, 4, 14, 5, 3, 5, 12, 1,", "conv", ":2: filter 5x3 is larger"),
    ("c, 14, 14, 3, 3, 5, 0, 1,", "conv", ":2: num filter must be > 0"),
    ("c, 14, 14, 3, 3, 5, 12, 1, 2:4,", "conv", ":2: sparsity ratio 2:4 is not modeled"),
    ("g, 4, 5,", "gemm", ":2: expected 4 fields"),
])
def test_bad_topology_names_file_and_line(tmp_path, row, kind, msg):
    p = tmp_path / "t.csv"
    p.write_text(f"header,\n{row}\n")
    with pytest.raises(ConfigError, match=msg) as e:
        read_topology(p, kind)
    assert str(p) in str(e.value)


def test_topology_forms_and_depthwise_expansion(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("h,\nconvA, 9, 9, 3, 3, 4, 6, 2\n\nDPconv, 5, 5, 3, 3, 3, 2, 1, 1:1,\n")
    ls = read_topology(p)
    assert [ly.name for ly in ls] == ["convA", "DPconvChannel_0", "DPconvChannel_1",
                                      "DPconvChannel_2"]
    assert (ls[0].gemm_m, ls[0].gemm_k, ls[0].gemm_n) == (16, 36, 6)
    assert (ls[1].gemm_m, ls[1].gemm_k, ls[1].gemm_n) == (9, 9, 2)
    g = read_topology(os.path.join(FIX, "gemm_small.csv"), "gemm")[0]
    assert (g.gemm_m, g.gemm_n, g.gemm_k) == (20, 30, 17)


def test_reports_are_scalesim_layout():
    cfg = read_config(os.path.join(FIX, "configs", "ws_8x8.cfg"))
    reps = simulate(cfg, read_topology(os.path.join(FIX, "conv_small.csv")))
    lines = compute_report(reps).splitlines()
    assert lines[1].startswith("0, , 1991, 0, ") and lines[1].endswith(",")
    assert detail_report(reps).splitlines()[1].startswith("0, 9.0, 1982.0, 12960, 1.0, ")


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2)
        self.c = torch.nn.Conv2d(8, 6, (1, 3), stride=3)
        self.fc = torch.nn.Linear(6, 5)

    def forward(self, x):
        x = self.c(self.b(self.a(x)))
        return self.fc(x.flatten(2).transpose(1, 2))


def test_export_reproduces_torch_output_sizes():
    net, x = _Net(), torch.zeros(2, 3, 20, 17)
    ls = model_topology(net, x)
    assert [ly.name for ly in ls] == ["a", "b.g0", "b.g1", "c", "fc"]
    sizes = {}
    h = x
    for name in ("a", "b", "c"):
        h = getattr(net, name)(h)
        sizes[name] = tuple(h.shape[-2:])
    for ly in ls[:4]:
        assert (ly.ofmap_h, ly.ofmap_w) == sizes[ly.name.split(".")[0]], ly
    assert (ls[1].channels, ls[1].filters) == (4, 4)
    m = sizes["c"][0] * sizes["c"][1]
    assert (ls[4].gemm_m, ls[4].gemm_n, ls[4].gemm_k) == (m, 5, 6)


def test_compile_writes_topology_csv(tmp_path, capsys):
    topo = tmp_path / "r20.csv"
    assert main(["compile", "resnet20_fmnist", "-o", str(tmp_path / "p.npz"), "--data",
                 "synthetic", "--calib", "4", "--random-weights", "--topology-csv",
                 str(topo)]) == 0
    ls = read_topology(topo)
    assert ls[0].name == "conv1" and ls[-1].name == "fc" and len(ls) == 22
    out = tmp_path / "ss"
    assert main(["scalesim", "-c", os.path.join(FIX, "configs", "ws_8x8.cfg"), "-t", str(topo),
                 "-p", str(out), "--quiet"]) == 0
    assert len((out / "ws_8x8" / "COMPUTE_REPORT.csv").read_text().splitlines()) == 23


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), fh=st.integers(1, 4), fw=st.integers(1, 4),
       c=st.integers(1, 5), s=st.integers(1, 4), R=st.integers(1, 20))
def test_ifmap_stop_cycle_equals_element_by_element(h, w, fh, fw, c, s, R):
    fh, fw = min(fh, h), min(fw, w)
    ly = Layer("c", h, w, fh, fw, c, 3, s, s)
    K = ly.gemm_k
    k0 = (-(-K // R) - 1) * R
    best = max(t + col - k0
               for t in range(ly.gemm_m) for col in range(k0, K)
               if (t // ly.ofmap_w) * s + col // (fw * c) < h
               and (t % ly.ofmap_w) * s + col % (fw * c) // c < w)
    r = layer_report(ly, R, 4)
    F, P = -(-K // R), 2 * R + 4 + ly.gemm_m - 2
    assert r.ifmap_sram_stop == (F - 1) * P + R + 1 + best
