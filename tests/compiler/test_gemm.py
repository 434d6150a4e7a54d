"""compiler/lower/gemm.py: dense convs, Linear layers, depthwise convs and attention
matmuls, bit-exact on small layers, with buffers small enough to force edge tiles."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import compiler
import npu_sim
from npu_sim import isa
from tests.compiler.helpers import assert_bit_exact, layer_instructions, quantize
from tests.quant.nets import TinyViTBlock

G = 16
RATIOS = (0.0, 0.5, 1.0)
SMALL = dict(group_size=G, cols=16, inp_kib=8, acc_kib=8, wgt_kib=32)  # ragged tiles


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class ConvStack(nn.Module):
    """A first conv, then the layer under test (8-bit or 4-bit capable), then a head."""

    def __init__(self, layer, c_in):
        super().__init__()
        self.c1 = nn.Conv2d(3, c_in, 3, padding=1)
        self.layer = layer
        self.head = nn.Conv2d(layer.out_channels, 8, 1)

    def forward(self, x):
        return self.head(torch.relu(self.layer(torch.relu(self.c1(x)))))


def _ranged(m):
    """Input channels of clearly different ranges, so priority orders are not identity."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d) and mod.in_channels > 3 and mod.groups == 1:
                mod.weight.mul_(torch.linspace(0.05, 2.0, mod.in_channels).view(1, -1, 1, 1))
    return m


LAYERS = {
    "dense3x3": lambda: nn.Conv2d(40, 40, 3, padding=1),
    "dense_stride2": lambda: nn.Conv2d(40, 24, 3, stride=2, padding=1),
    "dense_dilated": lambda: nn.Conv2d(40, 24, 3, padding=2, dilation=2),
    "pointwise": lambda: nn.Conv2d(40, 72, 1),
    "depthwise": lambda: nn.Conv2d(40, 40, 3, padding=1, groups=40),
    "depthwise_s2k5": lambda: nn.Conv2d(40, 40, 5, stride=2, padding=2, groups=40),
}


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_conv_layers_bit_exact(kind, dynamic):
    torch.manual_seed(0)
    m = _ranged(ConvStack(LAYERS[kind](), 40))
    x = _x(8, 3, 10, 10)
    qm = quantize(m, x, group_size=G, dynamic=dynamic)
    prog = assert_bit_exact(qm, x[:2], RATIOS, config=npu_sim.NPUConfig(**SMALL))
    gemms = layer_instructions(prog, "layer", isa.Gemm)
    assert len(gemms) > 2  # cut into several tiles


def _stores_cover(stores, total):
    """Every element of a [rows, n] output (flat ``total``) is stored exactly once."""
    hit = np.zeros(total, dtype=np.int64)
    for s in stores:
        stride = s.dram_stride or s.cols
        for r in range(s.rows):
            a = s.dram_addr + r * stride
            hit[a:a + s.cols] += 1
    return hit


@pytest.mark.parametrize("kind", ["dense3x3", "dense_stride2", "depthwise"])
def test_gemm_tiles_store_every_output_once(kind):
    """Channel tiles and row bands that do not divide the layer: the edge tiles are
    narrower or shorter, and together the stores write each output element once."""
    torch.manual_seed(0)
    m = ConvStack(LAYERS[kind](), 40)
    x = _x(4, 3, 10, 10)
    qm = quantize(m, x, group_size=G)
    prog = compiler.compile(qm, x[:2], config=npu_sim.NPUConfig(**SMALL))
    stores = layer_instructions(prog, "layer", isa.Store)
    base = prog.addr("t:layer")
    for s in stores:
        s.dram_addr -= base
    layer = LAYERS[kind]()
    hw = 10 // layer.stride[0]
    hit = _stores_cover(stores, 2 * hw * hw * layer.out_channels)
    assert np.all(hit == 1)
    assert len({s.cols for s in stores}) > 1 or len({s.rows for s in stores}) > 1  # edge tiles


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(20, 48)
        self.b = nn.Linear(48, 40)
        self.c = nn.Linear(40, 10)

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_linear_layers_bit_exact(dynamic):
    torch.manual_seed(0)
    m = Head()
    with torch.no_grad():
        m.b.weight.mul_(torch.linspace(0.05, 2.0, 48))
    x = _x(32, 20)
    qm = quantize(m, x, group_size=G, dynamic=dynamic)
    assert_bit_exact(qm, x[:4], RATIOS, config=npu_sim.NPUConfig(group_size=G))


def test_attention_matmuls_bit_exact():
    """The TinyViT block's q @ k^T reads k as "nk" weights (the transpose is never
    materialized), and attn @ v reads v as "kn" weights."""
    torch.manual_seed(0)
    x = _x(8, 16, 12)
    qm = quantize(TinyViTBlock(), x)
    prog = assert_bit_exact(qm, x[:2], RATIOS)
    layouts = {n: {g.w_layout for g in layer_instructions(prog, n, isa.Gemm)}
               for n in prog.layers if n.startswith("matmul")}
    assert layouts == {"matmul": {"nk"}, "matmul_1": {"kn"}}
    assert "transpose" not in prog.layers  # k.transpose(-2, -1) is never materialized


@pytest.mark.parametrize("layer,match", [
    (nn.Conv2d(40, 40, 3, padding=1, groups=2), "grouped conv with 2 groups"),
    (nn.Conv2d(40, 40, 3, stride=(1, 2), padding=1), "non-square stride"),
    (nn.Conv2d(40, 40, 3, padding="same"), "string padding"),
])
def test_unsupported_convs_are_refused(layer, match):
    x = _x(4, 3, 8, 8)
    qm = quantize(ConvStack(layer, 40), x)
    with pytest.raises(compiler.CompileError, match=match):
        compiler.compile(qm, x[:1])
