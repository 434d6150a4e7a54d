"""Each vector op on SRAM against the quant functions it must reproduce."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npu_sim import NPUConfig, isa, vector_unit
from npu_sim.errors import SimError
from npu_sim.extract import shifts_from_masks
from npu_sim.memory import SRAM
from quant import float_ops, int_ops
from quant.extraction import shift_for_range
from quant.rounding import quantize_multiplier, requantize

CFG = NPUConfig()


def _sram(**bufs):
    s = SRAM(CFG)
    for name, (addr, values) in bufs.items():
        v = np.asarray(values).reshape(-1)
        s.bufs[name.split("_")[0]][addr:addr + v.size] = v
    return s


def _run(ins, sram):
    return vector_unit.execute(ins, sram, CFG, "test")


def _read(s, buf, addr, shape):
    return s.bufs[buf][addr:addr + int(np.prod(shape))].reshape(shape).copy()


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 70), seed=st.integers(0, 2**31),
       signed=st.booleans())
def test_requant_bias_relu_and_or_reduce(rows, cols, seed, signed):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-200000, 200000, (rows, cols))
    bias = rng.integers(-5000, 5000, cols)
    ms = [quantize_multiplier(f) for f in rng.uniform(1e-4, 1e-3, cols)]
    m = np.array([a for a, _ in ms])
    s = np.array([b for _, b in ms])
    lo, hi = (-128, 127) if signed else (0, 255)
    sram = _sram(acc=(10, acc), param=(0, np.concatenate([bias, m, s])))
    cyc = _run(isa.Requant(src_addr=10, dst_addr=5, rows=rows, cols=cols, bias_addr=0,
                           mult_addr=cols, shift_addr=2 * cols, lo=lo, hi=hi,
                           or_addr=3 * cols, or_group=16, or_reset=True), sram)
    want = requantize(acc + bias, m, s, lo, hi)
    got = _read(sram, "inp", 5, (rows, cols))
    assert np.array_equal(got, want)
    assert cyc == CFG.vector_startup + -(-rows * cols // 32) * CFG.vector_costs["requant"]
    masks = _read(sram, "param", 3 * cols, (-(-cols // 16),))
    for g in range(len(masks)):
        blk = want[:, g * 16:(g + 1) * 16]
        assert shifts_from_masks(masks[g], signed) == \
            shift_for_range(blk.min(), blk.max(), signed)


def test_add_clamp_reorder():
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (3, 8))
    b = rng.integers(0, 256, (3, 8))
    ma, mb, s = int_ops.two_input_multipliers(0.05, 0.02, 0.06)
    sram = _sram(inp=(0, a), inp_b=(100, b))
    _run(isa.Add(a_addr=0, b_addr=100, dst_addr=200, rows=3, cols=8, ma=ma, mb=mb, s=s,
                 lo=-128, hi=127), sram)
    assert np.array_equal(_read(sram, "inp", 200, (3, 8)), int_ops.add(a, b, ma, mb, s, -128, 127))
    _run(isa.Clamp(src_addr=0, dst_addr=300, rows=3, cols=8, lo=0, hi=40), sram)
    assert np.array_equal(_read(sram, "inp", 300, (3, 8)), np.clip(a, 0, 40))
    perm = rng.permutation(8)
    sram.bufs["param"][:8] = perm
    _run(isa.Reorder(src_addr=0, dst_addr=400, rows=3, cols=8, perm_addr=0), sram)
    assert np.array_equal(_read(sram, "inp", 400, (3, 8)), a[:, perm])


@pytest.mark.parametrize("kind,k,stride,pad", [("max", 3, 2, 1), ("avg", 2, 2, 0),
                                               ("avg", 3, 1, 1), ("avg", 5, 1, 0)])
def test_pool(kind, k, stride, pad):
    import torch
    import torch.nn.functional as F
    rng = np.random.default_rng(1)
    h, c = 5, 6
    x = rng.integers(-128, 128, (h, h, c))
    m, s = quantize_multiplier(0.9 / (k * k))
    sram = _sram(inp=(0, x))
    _run(isa.Pool(kind=kind, src_addr=0, dst_addr=1000, h=h, w=h, c=c, kh=k, kw=k,
                  stride=stride, pad=pad, m=m, s=s), sram)
    xt = torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float64))
    if kind == "max":
        ref = F.max_pool2d(xt, k, stride, pad).numpy()[0].transpose(1, 2, 0).astype(np.int64)
    else:
        sums = F.avg_pool2d(xt, k, stride, pad, count_include_pad=True, divisor_override=1)
        ref = int_ops.sum_requant(np.rint(sums.numpy()[0].transpose(1, 2, 0)).astype(np.int64),
                                  m, s, -128, 127)
    assert np.array_equal(_read(sram, "inp", 1000, ref.shape), ref)


def test_float_ops_call_the_shared_implementation():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (4, 12))
    gamma = rng.uniform(0.5, 1.5, 12).astype(np.float32)
    beta = rng.uniform(-0.2, 0.2, 12).astype(np.float32)
    sram = _sram(inp=(0, x))
    sram.bufs["param"][:12] = gamma.view(np.int32)
    sram.bufs["param"][12:24] = beta.view(np.int32)
    _run(isa.LayerNorm(src_addr=0, dst_addr=100, rows=4, cols=12, gamma_addr=0, beta_addr=12,
                       in_scale=0.05, out_scale=0.03), sram)
    want = float_ops.layernorm(x, 0.05, gamma, beta, 1e-5, 0.03, True)
    assert np.array_equal(_read(sram, "inp", 100, (4, 12)), want)
    _run(isa.Softmax(src_addr=0, dst_addr=200, rows=4, cols=12, in_scale=0.05,
                     out_scale=1 / 255), sram)
    assert np.array_equal(_read(sram, "inp", 200, (4, 12)),
                          float_ops.softmax(x, 0.05, 1 / 255, False))
    _run(isa.Gelu(src_addr=0, dst_addr=300, rows=4, cols=12, in_scale=0.05, out_scale=0.02),
         sram)
    assert np.array_equal(_read(sram, "inp", 300, (4, 12)), float_ops.gelu(x, 0.05, 0.02, True))


def test_vector_errors_are_named():
    sram = _sram()
    with pytest.raises(SimError, match="'acc' buffer overflow"):
        _run(isa.Requant(src_addr=CFG.buffer_elems("acc") - 2, dst_addr=0, rows=1, cols=4,
                         mult_addr=0, shift_addr=0, lo=0, hi=1), sram)
    sram.bufs["param"][:4] = -1
    with pytest.raises(SimError, match="shift table"):
        _run(isa.Requant(src_addr=0, dst_addr=0, rows=1, cols=4, mult_addr=0, shift_addr=0,
                         lo=0, hi=1), sram)
