"""Every registry architecture traces with torch.fx into standard modules and explicit attention."""

from __future__ import annotations

import pytest
import torch
import torch.fx
from torch import nn

import models

from .conftest import built

TRANSFORMERS = ["vit_s_16", "vit_b_16", "deit_s", "deit_b", "swin_t", "swin_s", "swin_b",
                "vit_tiny_fmnist"]
ALLOWED_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.GELU, nn.Linear, nn.LayerNorm,
                  nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.Dropout, nn.ZeroPad2d)


@pytest.mark.parametrize("name", models.names())
def test_symbolic_trace_matches_eager(name):
    model = built(name)
    gm = torch.fx.symbolic_trace(model)
    x = models.example_input(name, batch=2)
    with torch.no_grad():
        ref, out = model(x), gm(x)
    assert out.shape == (2, models.info(name)["num_classes"])
    assert torch.isfinite(ref).all()
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], ALLOWED_LEAVES), (node.target, type(modules[node.target]))
        if node.op == "call_function":
            assert node.target is not torch.nn.functional.scaled_dot_product_attention


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_attention_is_explicit_linear_matmul_softmax(name):
    gm = torch.fx.symbolic_trace(built(name))
    ops = [n.target for n in gm.graph.nodes if n.op in ("call_function", "call_method")]
    assert ops.count("softmax") == sum(1 for n, m in built(name).named_modules()
                                       if n.endswith(("attn", "self_attention")))
    assert any(t is __import__("operator").matmul for t in ops)
    linears = [n.target for n in gm.graph.nodes
               if n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.Linear)]
    assert any(t.endswith(("qkv", "in_proj")) for t in linears)
    assert not any(isinstance(m, nn.MultiheadAttention) for m in built(name).modules())
