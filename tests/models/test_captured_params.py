"""Capture leaves every node of every registry architecture with a normalized op kind and
its parsed arguments (``node.meta["params"]``, quant/op_params.py), so no executor reads fx
arguments again."""

from __future__ import annotations

import pytest
import torch.fx as fx
from torch import nn

import models
from quant.capture import prepare
from quant.graph_walk import WALKED_KINDS

from .conftest import built

PARAM_KEYS = {
    "maxpool": {"kernel", "stride", "padding", "dilation", "ceil_mode", "return_indices"},
    "mean": {"dims", "keepdim"}, "cat": {"dim"}, "softmax": {"dim"}, "mul": {"factor"},
    "add": {"sign"}, "sub": {"sign"}, "pad": {"padding"},
}
AVGPOOL_KEYS = {"global": {"mode"}, "window": {"mode", "kernel", "stride", "padding", "ceil_mode"},
                "adaptive": {"mode", "output_size"}}


def _leaves(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x)
    elif isinstance(v, (tuple, list)):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


@pytest.mark.parametrize("name", models.names())
def test_every_captured_node_has_normalized_params(name):
    gm = prepare(built(name))
    mods = dict(gm.named_modules())
    kinds = set()
    for n in gm.graph.nodes:
        kind, p = n.meta["kind"], n.meta["params"]
        kinds.add(kind)
        assert kind in WALKED_KINDS | {"input", "const", "output"}, (n.name, kind)
        keys = AVGPOOL_KEYS[p["mode"]] if kind == "avgpool" else PARAM_KEYS.get(kind, set())
        assert set(p) == keys, (n.name, kind, p)
        assert not any(isinstance(v, fx.Node) for v in _leaves(p)), (n.name, p)
        mod = mods.get(n.target) if n.op == "call_module" else None
        if kind == "maxpool" and mod is not None:
            assert (p["kernel"], p["stride"], p["padding"]) == (
                _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.padding))
        if kind == "avgpool":  # shipped models pool globally to 1x1
            assert p == {"mode": "global"} and isinstance(mod, nn.AdaptiveAvgPool2d)
        if kind == "pad":
            assert p["padding"] == tuple(mod.padding) and len(p["padding"]) == 4
        if kind == "softmax":
            assert p["dim"] == -1
        if kind == "mul":
            assert isinstance(p["factor"], (int, float)) and p["factor"] > 0
        if kind == "cat":
            assert isinstance(p["dim"], int)
        if kind in ("add", "sub"):
            assert p["sign"] == (-1 if kind == "sub" else 1)
    assert {"input", "output"} <= kinds and kinds & {"conv", "linear"}
