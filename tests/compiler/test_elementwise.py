"""compiler/lower/elementwise.py (and the band loop of compiler/lower/rowwise.py): adds,
subs, clamps, LayerNorm, softmax and GELU, bit-exact on small layers."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import compiler
import npu_sim
from npu_sim import isa
from tests.compiler.helpers import assert_bit_exact, layer_instructions, quantize


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class Residual(nn.Module):
    """Two branches joined by add or sub, then ReLU / ReLU6 / hardtanh."""

    def __init__(self, join, act):
        super().__init__()
        self.join, self.act = join, act
        self.a = nn.Linear(12, 24)
        self.b = nn.Linear(12, 24)
        self.head = nn.Linear(24, 6)

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        z = a + b if self.join == "add" else a - b
        z = {"relu": torch.relu, "relu6": F.relu6,
             "hardtanh": lambda v: F.hardtanh(v, 0.0, 6.0)}[self.act](z)
        return self.head(z)


@pytest.mark.parametrize("act", ["relu", "relu6", "hardtanh"])
@pytest.mark.parametrize("join", ["add", "sub"])
def test_add_sub_and_clamps_bit_exact(join, act):
    x = _x(16, 5, 12)
    prog = assert_bit_exact(quantize(Residual(join, act), x), x[:2])
    name = "add" if join == "add" else "sub"
    adds = layer_instructions(prog, name, isa.Add)
    assert adds and all((a.mb < 0) == (join == "sub") for a in adds)


class PosEmbed(nn.Module):
    """An add whose second operand is a constant (a position embedding)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 16)
        self.pos = nn.Parameter(torch.linspace(-1, 1, 5 * 16).reshape(1, 5, 16))
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(torch.relu(self.fc(x) + self.pos))


def test_add_of_a_constant_bit_exact():
    x = _x(16, 5, 12)
    prog = assert_bit_exact(quantize(PosEmbed(), x), x[:2])
    assert any(r.startswith("c:add") for r in prog.regions)  # the constant's codes


class NormBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 32)
        self.ln = nn.LayerNorm(32)
        self.mlp = nn.Linear(32, 32)
        self.head = nn.Linear(32, 32)

    def forward(self, x):
        z = F.gelu(self.mlp(self.ln(self.fc(x))))
        return F.softmax(self.head(z), dim=-1)


def test_layernorm_gelu_softmax_bit_exact():
    x = _x(16, 7, 12)
    prog = assert_bit_exact(quantize(NormBlock(), x), x[:2], (0.0, 0.5, 1.0))
    kinds = {type(i) for i in prog.instructions}
    assert {isa.LayerNorm, isa.Gelu, isa.Softmax} <= kinds


def test_rowwise_bands_cover_every_row():
    """Rows that do not fit one band are cut into bands; the last one is shorter."""
    x = _x(16, 21, 12)
    qm = quantize(Residual("add", "relu"), x)
    prog = assert_bit_exact(qm, x[:2], config=npu_sim.NPUConfig(inp_kib=1))  # 5-row bands
    adds = layer_instructions(prog, "add", isa.Add)
    assert len(adds) > 1 and sum(a.rows for a in adds) == 2 * 21
    assert len({a.rows for a in adds}) == 2  # full bands and one edge band


def test_row_wider_than_a_slot_is_refused():
    class WideAdd(nn.Module):
        def __init__(self):
            super().__init__()
            self.pos = nn.Parameter(torch.linspace(-1, 1, 200))
            self.head = nn.Linear(200, 4)

        def forward(self, x):
            return self.head(torch.relu(x + self.pos))

    x = _x(16, 3, 200)  # two rows of 200 channels do not fit the 384-byte 'inp' slot
    qm = quantize(WideAdd(), x)
    with pytest.raises(compiler.TilingError, match="'add': one row of 200 channels"):
        compiler.compile(qm, x[:1], config=npu_sim.NPUConfig(inp_kib=1))
