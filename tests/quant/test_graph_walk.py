"""One graph walk for every backend: op arguments parsed once at capture, both backends visit
the same nodes with the same meaning, and running a model changes nothing in it."""

import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import quant
from quant.capture import prepare
from quant.errors import ConfigError, UnsupportedOpError
from quant.fake_quant import FakeQuantModel, FQTensor
from quant.graph_walk import WALKED_KINDS
from quant.runtime import QTensor
from quant.select.fitness import SoftLabelFitness
from quant.select.prefix_cache import PrefixCache
from quant.select.space import SearchSpace

pytestmark = pytest.mark.usefixtures("one_thread")


class AllOps(nn.Module):
    """Most op kinds the walk knows, in module or functional form (``functional``)."""

    def __init__(self, functional=False):
        super().__init__()
        self.functional = functional
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.pad = nn.ZeroPad2d(1)
        self.c2 = nn.Conv2d(16, 16, 3)
        self.mp = nn.MaxPool2d(3, stride=2, padding=1)
        self.ap = nn.AvgPool2d(2)
        self.gp = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, 32)
        self.ln = nn.LayerNorm(32)
        self.sm = nn.Softmax(dim=-1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        a = F.relu(self.c1(x))
        b = F.relu6(self.c2(self.pad(a)))
        s = (a - b) + a
        if self.functional:
            m = F.max_pool2d(s, 3, 2, 1)
            g = F.adaptive_avg_pool2d(m, 1)
            z = torch.cat([self.ap(m), self.ap(m) * 0.5], dim=1)
            v = torch.mean(z, dim=[-2, -1])
        else:
            m = self.mp(s)
            g = self.gp(m)
            z = torch.cat([self.ap(m), self.ap(m) * 0.5], 1)
            v = z.mean((2, 3))
        h = self.ln(F.gelu(self.fc(v))) + torch.flatten(torch.cat([g, g], 1), 1)
        t = h.reshape(h.size(0), 1, -1)
        att = t.transpose(-2, -1) @ t
        att = F.softmax(att, dim=-1) if self.functional else self.sm(att)
        return self.head(att.mean(1))


def _quantized(functional=False, **cfg):
    torch.manual_seed(0)
    m = AllOps(functional).eval()
    x = torch.randn(16, 3, 8, 8)
    return quant.quantize(m, [x[:8], x[8:]], quant.QuantConfig(**cfg), progress=False), x


def _params(gm):
    return [(n.meta["kind"], n.meta["params"]) for n in gm.graph.nodes]


def test_functional_and_module_forms_normalize_alike():
    mod, fun = prepare(AllOps(False)), prepare(AllOps(True))
    assert [k for k, _ in _params(mod)] == [k for k, _ in _params(fun)]
    for (kind, a), (_, b) in zip(_params(mod), _params(fun)):
        if kind == "mean":  # dims as written: (2, 3) vs (-2, -1); the walk takes them modulo
            assert [d % 4 for d in a["dims"]] == [d % 4 for d in b["dims"]]
            assert a["keepdim"] is b["keepdim"] is False
        elif kind == "softmax":
            assert a["dim"] == b["dim"] == -1
        elif kind != "avgpool" or a["mode"] == "global":
            assert a == b, kind
    byk = {}
    for kind, p in _params(mod):
        byk.setdefault(kind, []).append(p)
    assert byk["maxpool"] == [dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                                   ceil_mode=False, return_indices=False)]
    assert {"mode": "global"} in byk["avgpool"]
    assert dict(mode="window", kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                ceil_mode=False) in byk["avgpool"]
    assert byk["pad"] == [{"padding": (1, 1, 1, 1)}]
    assert byk["mul"] == [{"factor": 0.5}]
    assert byk["sub"] == [{"sign": -1}] and {"sign": 1} in byk["add"]
    assert byk["cat"] == [{"dim": 1}, {"dim": 1}]
    assert {"dims": (1,), "keepdim": False} in byk["mean"]


def test_the_walk_executes_from_params_not_from_fx_arguments():
    """The same weights in module and functional form give the same integers."""
    qa, x = _quantized(False)
    qb, _ = _quantized(True)
    for r in (0.0, 1.0):
        qa.set_ratio(r)
        qb.set_ratio(r)
        assert torch.equal(qa.run(x).codes, qb.run(x).codes)


def _trace(run):
    seen = []

    def on_value(n, v):
        if isinstance(v, (QTensor, FQTensor)):
            seen.append((n.name, n.meta["kind"], tuple(v.codes.shape), v.scale, v.signed))
        else:
            seen.append((n.name, n.meta["kind"], type(v).__name__))

    out = run(on_value)
    return seen, out


@pytest.mark.parametrize("cfg", [{}, {"dynamic": True}], ids=["static", "dynamic"])
def test_integer_and_fake_quant_walk_the_same_nodes(cfg):
    qm, x = _quantized(**cfg)
    qm.set_ratio(1.0)
    fq = FakeQuantModel(qm)
    int_seen, int_out = _trace(lambda f: qm.run(x, on_value=f))
    with torch.no_grad():
        fq_seen, fq_out = _trace(lambda f: fq.walker(on_value=f).run(x))
    assert int_seen == fq_seen
    assert [s[0] for s in int_seen] == [n.name for n in qm.graph.nodes]
    walked = {s[1] for s in int_seen}
    assert WALKED_KINDS - walked <= {"relu", "relu6", "hardtanh"}  # those are fused here
    assert "fused" in walked
    # precise fake-quant is bit-identical on this model
    assert np.array_equal(int_out.codes.numpy(), fq_out.codes.numpy().astype(np.int64))


def test_running_changes_neither_graph_nor_records():
    qm, x = _quantized()
    before = copy.deepcopy((_params(qm.gm), {k: dict(q.consts) for k, q in qm.node_q.items()}))
    qm.run(x)
    with torch.no_grad():
        FakeQuantModel(qm)(x)
    after = (_params(qm.gm), {k: dict(q.consts) for k, q in qm.node_q.items()})
    assert repr(after) == repr(before)
    assert not any("keepdim" in q.consts for q in qm.node_q.values())


def test_public_graph_api():
    qm, _ = _quantized()
    assert qm.graph is qm.gm.graph
    calls = [n for n in qm.graph.nodes if n.op == "call_module"]
    assert calls and all(qm.submodule(n.target) is qm.module(n) is not None for n in calls)
    assert all(qm.module(n) is None for n in qm.graph.nodes if n.op != "call_module")
    with pytest.raises(ConfigError, match="no submodule 'nope'"):
        qm.submodule("nope")


def test_an_unsupported_pool_is_refused_when_run():
    class Adaptive(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3)
            self.p = nn.AdaptiveAvgPool2d(2)

        def forward(self, x):
            return self.p(self.c(x))

    x = torch.randn(4, 3, 8, 8)
    qm = quant.quantize(Adaptive().eval(), [x], progress=False)
    assert qm.graph.find_nodes(op="call_module", target="p")[0].meta["params"] == \
        {"mode": "adaptive", "output_size": 2}
    with pytest.raises(UnsupportedOpError, match="adaptive average pool to 2"):
        qm.run(x)
    with pytest.raises(UnsupportedOpError, match="adaptive average pool to 2"):
        FakeQuantModel(qm)(x)


def test_prefix_cache_reuses_values_without_changing_fitness():
    qm, x = _quantized()
    space = SearchSpace(qm)
    cached = SoftLabelFitness(qm, space, x, batch=16)
    plain = SoftLabelFitness(qm, space, x, batch=16, cache_bytes=0)
    assert isinstance(cached.prefix, PrefixCache) and plain.prefix is None
    assert space.n >= 2
    for tail in itertools.product([False, True], repeat=min(space.n - 1, 3)):
        flags = np.ones(space.n, dtype=bool)  # same first group, different later ones
        flags[1:1 + len(tail)] = tail
        assert torch.equal(cached.soft(flags), plain.soft(flags))
    assert cached.prefix.hits > 0
