"""compiler/lower/op_args.py: what each op's fx node says, read from real captured graphs
(module and functional forms, keyword and positional arguments, negative axes)."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import compiler
from compiler.lower import op_args
from tests.compiler.helpers import quantize


class Everything(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.mp = nn.MaxPool2d(3, stride=2, padding=1)
        self.ap = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.pad = nn.ZeroPad2d((1, 2, 0, 3))
        self.c2 = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        y = torch.relu(self.c1(x))                          # [B, 8, 8, 8]
        a = self.mp(y)
        b = F.max_pool2d(y, 2)                              # stride = kernel
        c = F.max_pool2d(y, kernel_size=3, stride=1, padding=1)
        d = self.ap(a) + self.gap(b)
        e = self.c2(self.pad(c)).mean((-1, -2))             # [B, 8]
        t = torch.cat([d.flatten(1), e], dim=-1) * 0.5      # [B, 16]
        q = t.reshape(-1, 4, 4)
        s = q @ q.transpose(-2, -1)
        return s + q.transpose(1, 2) @ q


@pytest.fixture(scope="module")
def nodes():
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    qm = quantize(Everything(), x)
    return qm, {n.name: n for n in qm.gm.graph.nodes}


def test_pool_windows(nodes):
    qm, n = nodes
    assert op_args.maxpool_args(qm, n["mp"]) == ((3, 3), (2, 2), (1, 1), (1, 1), False)
    assert op_args.maxpool_args(qm, n["max_pool2d"]) == ((2, 2), (2, 2), (0, 0), (1, 1), False)
    assert op_args.maxpool_args(qm, n["max_pool2d_1"]) == ((3, 3), (1, 1), (1, 1), (1, 1),
                                                           False)
    assert op_args.avgpool_window(qm, n["ap"]) == ((2, 2), (2, 2), (0, 0))
    assert op_args.avgpool_window(qm, n["gap"]) is None  # the whole plane


def test_mean_cat_mul_pad(nodes):
    qm, n = nodes
    assert op_args.mean_dims(n["mean"], 4) == (2, 3)
    parts, dim = op_args.cat_args(n["cat"], 2)
    assert [p.name for p in parts] == ["flatten", "mean"] and dim == 1
    assert op_args.mul_factor(n["mul"]) == 0.5
    assert op_args.pad_amounts(qm, n["pad"]) == (1, 2, 0, 3)
    assert [a.name for a in op_args.tensor_operands(n["add"])] == ["ap", "gap"]


def test_matmul_operands_and_transposes(nodes):
    _, n = nodes
    a, b = op_args.matmul_operands(n["matmul"])
    assert (a.name, b.name) == ("reshape", "transpose")
    assert op_args.transposed_last_two(n["transpose"]).name == "reshape"
    assert op_args.transposed_last_two(n["transpose_1"]) is None  # axes 1, 2 of a 3-d
    assert op_args.transposed_last_two(n["reshape"]) is None


def test_output_must_be_one_tensor():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            return y, y

    x = torch.randn(4, 4)
    qm = quantize(Two(), x)
    out = next(n for n in qm.gm.graph.nodes if n.op == "output")
    with pytest.raises(compiler.CompileError, match="single tensor"):
        op_args.output_arg(out)
