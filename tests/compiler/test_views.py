"""compiler/lower/views.py: layout ops as index-map views (materialized by DMA when a real
op reads them), fused epilogues, multiplication by a constant, zero padding folded into
the next conv."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

import compiler
from compiler.lower.views import _blocks
from npu_sim import isa
from tests.compiler.helpers import assert_bit_exact, quantize


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@given(st.lists(st.integers(0, 60), max_size=80))
def test_blocks_reproduce_the_gather(idx):
    idx = np.asarray(idx, dtype=np.int64)
    got = np.full(idx.size, -1)
    for dst, src, rows, cols, stride in _blocks(idx):
        assert rows >= 1 and cols >= 1 and (rows == 1 or stride >= 1)
        for r in range(rows):
            got[dst + r * cols: dst + (r + 1) * cols] = np.arange(cols) + src + r * stride
    np.testing.assert_array_equal(got, idx)


def test_contiguous_runs_make_few_blocks():
    """A transpose of a [4, 6] matrix: 24 one-element runs become 6 strided blocks."""
    idx = np.arange(24).reshape(4, 6).T.reshape(-1)
    assert len(_blocks(idx)) == 6
    assert len(_blocks(np.arange(24))) == 1


class Shuffle(nn.Module):
    """Windows and heads: reshape, permute, transpose, slicing, chunk, nn.Flatten."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 16)
        self.flat = nn.Flatten()
        self.head = nn.Linear(16 * 4 * 2, 10)

    def forward(self, x):
        y = torch.relu(self.c1(x))                       # [B, 16, 8, 8]
        b = y.shape[0]
        w = y.reshape(b, 16, 2, 4, 2, 4).permute(0, 2, 4, 3, 5, 1).reshape(b * 4, 16, 16)
        t = torch.relu(self.fc(w))                       # per-window tokens
        lo, hi = t.chunk(2, dim=1)
        z = (lo[:, :4] + hi[:, -4:]).transpose(1, 2)     # [4B, 16, 4]
        return self.head(self.flat(z.reshape(b, 4, 16, 4)[:, :2]))


def test_layout_ops_bit_exact():
    x = _x(8, 3, 8, 8)
    prog = assert_bit_exact(quantize(Shuffle(), x, group_size=16), x[:2], (0.0, 0.5, 1.0))
    # the window shuffle is materialized by DMA only (LOAD/STORE, no vector instruction)
    by_layer = {}
    for ins in prog.instructions:
        by_layer.setdefault(prog.layers[ins.layer], set()).add(type(ins))
    gathers = [n for n, kinds in by_layer.items() if isa.Store in kinds
               and kinds <= {isa.Load, isa.Store, isa.Nop}]
    assert gathers


class Scaled(nn.Module):
    """``x * c`` after a Linear: the same codes at another scale, no instruction."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(12, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) * 0.25)


def test_mul_by_a_number_is_free_and_bit_exact():
    x = _x(16, 3, 12)
    prog = assert_bit_exact(quantize(Scaled(), x), x[:2])
    assert "mul" not in prog.layers


class Padded(nn.Module):
    def __init__(self, then_conv=True):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))  # TF "same" padding of a stride-2 conv
        self.c2 = nn.Conv2d(16, 16, 3, stride=2)
        self.then_conv = then_conv

    def forward(self, x):
        y = self.pad(torch.relu(self.c1(x)))
        return self.c2(y) if self.then_conv else torch.relu(y)


def test_zero_padding_folds_into_the_conv():
    x = _x(8, 3, 8, 8)
    prog = assert_bit_exact(quantize(Padded(), x, group_size=16), x[:2])
    assert "pad" not in prog.layers  # no data moved for the pad
    conv_loads = [i for i in prog.instructions if isinstance(i, isa.Load) and i.buf == "inp"
                  and i.layer == prog.layers.index("c2")]
    assert any(ld.pad_right > 0 or ld.pad_bottom > 0 for ld in conv_loads)


def test_zero_padding_feeding_no_conv_is_refused():
    x = _x(8, 3, 8, 8)
    qm = quantize(Padded(then_conv=False), x)
    with pytest.raises(compiler.CompileError, match="zero padding at 'pad'.*convs only"):
        compiler.compile(qm, x[:1])
