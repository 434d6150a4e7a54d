"""compiler/lower/cat.py: concatenations of activations and constants, bit-exact."""

import pytest
import torch
import torch.nn as nn

from npu_sim import isa
from tests.compiler.helpers import assert_bit_exact, layer_instructions, quantize


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class ClassToken(nn.Module):
    """A constant class token in front of the tokens (a DRAM image holds its codes)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 16)
        self.cls = nn.Parameter(torch.linspace(-2, 2, 16).reshape(1, 1, 16))
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        z = torch.relu(self.fc(x))
        z = torch.cat([self.cls.expand(z.shape[0], -1, -1), z], dim=1)
        return self.head(z)


def test_constant_and_activation_parts_bit_exact():
    x = _x(16, 5, 12)
    prog = assert_bit_exact(quantize(ClassToken(), x), x[:2])
    # one requantizing copy (REQUANT from 'inp') per activation part; the token is data
    reqs = layer_instructions(prog, "cat", isa.Requant)
    assert reqs and all(r.src_buf == "inp" for r in reqs)
    assert sum(r.rows for r in reqs) == 2 * 5


class Branches(nn.Module):
    """Two Linear branches of different widths joined along the last axis."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.a = nn.Linear(12, 8)
        self.b = nn.Linear(12, 24)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(torch.cat([torch.relu(self.a(x)), self.b(x)], dim=self.dim))


@pytest.mark.parametrize("dim", [-1, 2])
def test_channel_concat_of_sequences_bit_exact(dim):
    x = _x(16, 5, 12)
    prog = assert_bit_exact(quantize(Branches(dim), x), x[:2], (0.0, 0.5, 1.0))
    stores = layer_instructions(prog, "cat", isa.Store)
    # each part lands at its channel offset, rows strided by the cat's width
    assert {s.cols for s in stores} == {8, 24} and {s.dram_stride for s in stores} == {32}


class FeatureMapCat(nn.Module):
    """Feature maps joined along channels, then a pool and a conv."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 16, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.c3 = nn.Conv2d(24, 8, 1)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        z = torch.cat([torch.relu(self.a(y)), self.b(y)], 1)
        return self.c3(nn.functional.max_pool2d(z, 2))


def test_feature_map_concat_bit_exact():
    x = _x(8, 3, 8, 8)
    assert_bit_exact(quantize(FeatureMapCat(), x, group_size=8), x[:2], (0.0, 1.0))
