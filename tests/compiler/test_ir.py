"""compiler/ir.py: IR capture (kinds, shapes, edges) and the errors of unsupported ops."""

import pytest
import torch
import torch.nn as nn

import quant
from compiler.ir import build_ir


def test_ir_shapes_and_kinds(make_qmodel):
    qm, x = make_qmodel("conv")
    g = build_ir(qm, x[:2])
    assert g.nodes["c3"]["kind"] == "conv" and g.nodes["c3"]["shape"] == (2, 64, 6, 6)
    assert g.nodes["head"]["shape"] == (2, 10)
    assert g.has_edge("c4", "add")


def test_unsupported_op_names_node_and_source():
    class Weird(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x) * 2

    with pytest.raises(quant.UnsupportedOpError, match=r"sigmoid.*node 'sigmoid'.*test_ir.py"):
        quant.quantize(nn.Sequential(nn.Linear(3, 3), Weird()), [torch.randn(2, 3)], progress=False)
