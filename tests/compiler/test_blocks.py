"""Common CNN blocks around residual adds and concatenations compile bit-exactly.

Each block puts a GEMM into the same channel-layout class as its own input (the add joins
the conv's output and input), or makes one tensor feed an add and a conv, or gathers
channels by concatenation before a conv. The simulator must give the quant runtime's
integers at every ratio, with the default priority orders and with a (random) selection.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import compiler
import npu_sim
import quant
from compiler.ir import build_ir
from compiler.passes.channel_order import assign_channel_orders
from compiler.passes.fmap import assign_fmaps
from quant.select import select

RATIOS = (0.0, 0.5, 1.0)


def _head(z, fc):
    return fc(torch.flatten(F.adaptive_avg_pool2d(z, 1), 1))


class ResidualOneConv(nn.Module):
    """``z = relu(conv(y) + y)``: a residual branch with a single conv."""

    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(3, c, 3, padding=1)
        self.c3 = nn.Conv2d(c, c, 3, padding=1)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        return _head(torch.relu(self.c3(y) + y), self.fc)


class ConvFork(nn.Module):
    """A conv's output feeds both an add and another conv; a third conv reads the sum."""

    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(3, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.c3 = nn.Conv2d(c, c, 1)
        self.c4 = nn.Conv2d(c, c, 1)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        a = self.c2(torch.relu(self.c1(x)))
        s = torch.relu(a + self.c3(a))
        return _head(torch.relu(self.c4(s)) + s, self.fc)


class ConcatConv(nn.Module):
    """Two branches concatenated along channels, then a conv."""

    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(3, c, 3, padding=1)
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 1)
        self.c3 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        z = torch.cat([torch.relu(self.a(y)), torch.relu(self.b(y))], dim=1)
        return _head(torch.relu(self.c3(z)), self.fc)


BLOCKS = {"residual_one_conv": ResidualOneConv, "conv_fork": ConvFork, "concat_conv": ConcatConv}


def _quantized(block, channels, selection, **cfg):
    torch.manual_seed(0)
    m = BLOCKS[block](channels).eval()
    with torch.no_grad():  # channels of clearly different ranges: priority orders not identity
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d) and mod.in_channels > 3:
                mod.weight.mul_(torch.linspace(0.05, 2.0, mod.in_channels).view(1, -1, 1, 1))
    x = torch.randn(16, 3, 8, 8)
    qm = quant.quantize(m, [x], quant.QuantConfig(group_size=16, **cfg), progress=False)
    if selection:
        qm.attach_selection(select(qm, [x], method="random", ratios=RATIOS, seed=3,
                                   progress=False))
    return qm, x[:2]


@pytest.mark.parametrize("cfg", [{}, {"dynamic": True}], ids=["static", "dynamic"])
@pytest.mark.parametrize("selection", [False, True], ids=["priority", "selection"])
@pytest.mark.parametrize("channels", [16, 48])
@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_block_bit_exact(block, channels, selection, cfg):
    qm, x = _quantized(block, channels, selection, **cfg)
    prog = compiler.compile(qm, x, ratios=RATIOS, config=npu_sim.NPUConfig(group_size=16))
    some_four_bit = False
    for r in RATIOS:
        qm.set_ratio(r)
        some_four_bit |= any(L.max4 for L in qm.layers.values())
        ref = qm.run(x).codes.numpy()
        res = npu_sim.simulate(prog, compiler.encode_input(prog, x), ratio=r)
        np.testing.assert_array_equal(res.output.reshape(ref.shape), ref,
                                      err_msg=f"{block} C={channels} ratio {r}")
    qm.set_ratio(0.0)
    assert some_four_bit  # the test exercises 4-bit channels, not only 8-bit


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_block_gemms_read_their_priority_order(block):
    """Every eligible dense GEMM reads its input in its own priority order (the layout pass
    either gives the class that order or puts a REORDER in front of the GEMM)."""
    qm, x = _quantized(block, 48, True)
    g = assign_channel_orders(assign_fmaps(build_ir(qm, x)))
    checked = 0
    for n, d in g.nodes(data=True):
        L = d.get("layer")
        if L is None or not L.eligible or L.groups != 1:
            continue
        src = next(a for a in g.predecessors(n) if g.nodes[a]["kind"] not in ("const", "shape"))
        perm = g.nodes[src].get("perm")
        got = np.arange(L.in_channels) if perm is None else perm
        assert np.array_equal(got, L.order), n
        checked += 1
    assert checked >= 1
