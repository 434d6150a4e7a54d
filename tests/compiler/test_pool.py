"""compiler/lower/pool.py: max pool, average pool and means, bit-exact on small layers."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import compiler
import npu_sim
from compiler.lower.pool import NO_CLAMP
from npu_sim import isa
from quant.errors import UnsupportedOpError
from tests.compiler.helpers import assert_bit_exact, layer_instructions, quantize


class PoolNet(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.c1 = nn.Conv2d(3, 24, 3, padding=1)
        self.pool = pool
        self.c2 = nn.Conv2d(24, 16, 1)

    def forward(self, x):
        return self.c2(self.pool(torch.relu(self.c1(x))))


class Functional(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pool", [
    nn.MaxPool2d(2), nn.MaxPool2d(3, stride=2, padding=1),
    Functional(lambda x: F.max_pool2d(x, 2)),  # stride defaults to the kernel
    Functional(lambda x: F.max_pool2d(x, kernel_size=3, stride=1, padding=1)),
    nn.AvgPool2d(2), nn.AvgPool2d(3, stride=1, padding=1), nn.AdaptiveAvgPool2d(1),
    Functional(lambda x: F.avg_pool2d(x, 2)),  # a window, not an adaptive pool to 2x2
    Functional(lambda x: F.avg_pool2d(x, 3, stride=1, padding=1)),
    Functional(lambda x: F.adaptive_avg_pool2d(x, output_size=1)),
], ids=["max2", "max3s2p1", "fmax2", "fmax3kw", "avg2", "avg3p1", "adaptive", "favg2",
        "favg3p1", "fadaptive"])
def test_pools_bit_exact(pool):
    x = _x(8, 3, 8, 8)
    qm = quantize(PoolNet(pool), x)
    assert_bit_exact(qm, x[:2])


@pytest.mark.parametrize("fn", [F.avg_pool2d, nn.AvgPool2d(2)])
def test_functional_and_module_avg_pool_agree_with_float(fn):
    """F.avg_pool2d(x, 2) averages 2x2 windows (it was once read as an adaptive pool to
    2x2): the integer result stays within a code or two of the float model."""
    net = PoolNet(Functional(lambda x: fn(x, 2)) if fn is F.avg_pool2d else fn)
    x = _x(8, 3, 8, 8)
    qm = quantize(net, x)
    with torch.no_grad():
        ref = net(x[:2])
    out = qm.run(x[:2])
    assert tuple(out.codes.shape) == tuple(ref.shape) == (2, 16, 4, 4)
    assert float((out.dequantize() - ref).abs().max()) <= 3 * out.scale


def test_avg_pool_without_padding_in_the_count_is_refused():
    x = _x(8, 3, 8, 8)
    net = PoolNet(Functional(lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)))
    with pytest.raises(UnsupportedOpError, match="count_include_pad"):
        quantize(net, x).run(x[:1])


def test_max_pool_never_clamps():
    x = _x(8, 3, 8, 8)
    prog = compiler.compile(quantize(PoolNet(nn.MaxPool2d(2)), x), x[:1])
    pools = layer_instructions(prog, "pool", isa.Pool)
    assert pools and all((p.kind, p.lo, p.hi) == ("max", -NO_CLAMP, NO_CLAMP) for p in pools)


class MeanNet(nn.Module):
    """Spatial mean of a feature map (keepdim or not), or token mean of a sequence."""

    def __init__(self, tokens, keepdim):
        super().__init__()
        self.tokens, self.keepdim = tokens, keepdim
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = nn.Linear(12, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        if self.tokens:
            z = torch.relu(self.fc1(x)).mean(dim=-2)  # negative axis of a [B, T, C] tensor
        else:
            z = torch.relu(self.c1(x)).mean((2, 3), keepdim=self.keepdim)
            z = z.flatten(1)
        return self.head(z)


@pytest.mark.parametrize("tokens,keepdim", [(False, False), (False, True), (True, False)])
def test_means_bit_exact(tokens, keepdim):
    x = _x(8, 6, 12) if tokens else _x(8, 3, 6, 6)
    qm = quantize(MeanNet(tokens, keepdim), x)
    prog = assert_bit_exact(qm, x[:2])
    pools = [i for i in prog.instructions if isinstance(i, isa.Pool)]
    assert pools and all(p.kind == "avg" for p in pools)


def test_pool_channel_tiles_cover_every_channel():
    """A plane too large for all channels in one 'inp' slot is cut into channel tiles."""
    x = _x(4, 3, 16, 16)
    qm = quantize(PoolNet(nn.MaxPool2d(2)), x)
    cfg = npu_sim.NPUConfig(inp_kib=8)  # slot of 3 KiB: 12 channels of a 16x16 plane
    prog = assert_bit_exact(qm, x[:1], config=cfg)
    pools = layer_instructions(prog, "pool", isa.Pool)
    assert len(pools) > 1 and sum(p.c for p in pools) == 24


@pytest.mark.parametrize("pool,match", [
    (nn.MaxPool2d(2, ceil_mode=True), "floor mode"),
    (nn.MaxPool2d((2, 3)), "square windows"),
    (nn.MaxPool2d(2, dilation=2), "no dilation"),
])
def test_unsupported_max_pools_are_refused(pool, match):
    x = _x(4, 3, 8, 8)
    with pytest.raises(compiler.CompileError, match=match):
        compiler.compile(quantize(PoolNet(pool), x), x[:1])


def test_mean_over_channels_is_refused():
    class ChannelMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3)

        def forward(self, x):
            return self.c1(x).mean(1)

    x = _x(4, 3, 6, 6)
    with pytest.raises(compiler.CompileError, match=r"mean over dims \(1,\) of a 4-d"):
        compiler.compile(quantize(ChannelMean(), x), x[:1])
