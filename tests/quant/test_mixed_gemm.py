"""quant.mixed_gemm / mixed_conv2d against slow independent references."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant import mixed_conv2d, mixed_gemm
from quant.extraction import bits_for_range
from quant.rounding import rshift_rne


def _shift(lo, hi, signed, naive):
    return 4 if naive else max(0, int(bits_for_range(lo, hi, signed)) - 4)


def slow_gemm(x, w, n4, g, signed, naive, x_range, dynamic, per_weight=False):
    """Element-by-element reference written straight from docs/numeric_contract.md, "4-bit lowering"."""
    m, k = x.shape
    n = w.shape[0]
    acc = np.zeros((m, n), dtype=object)
    lo4, hi4 = (-8, 7) if signed else (0, 15)
    for i in range(m):
        for j in range(n):
            tot = 0
            for a in range(0, n4, g):
                b = min(a + g, n4)
                if dynamic:
                    ex = _shift(x[i, a:b].min(), x[i, a:b].max(), signed, naive)
                elif x_range is not None:
                    ex = _shift(x_range[0, a:b].min(), x_range[1, a:b].max(), signed, naive)
                else:
                    ex = _shift(x[:, a:b].min(), x[:, a:b].max(), signed, naive)
                ew = _shift(w[j, a:b].min(), w[j, a:b].max(), True, naive)
                part = 0
                for c in range(a, b):
                    x4 = min(max(int(rshift_rne(x[i, c], ex)), lo4), hi4)
                    if per_weight:
                        ewc = _shift(min(w[j, c], 0), max(w[j, c], 0), True, naive)
                        w4 = min(max(int(rshift_rne(w[j, c], ewc)), -8), 7) << ewc
                        part += (x4 * w4) << ex
                    else:
                        w4 = min(max(int(rshift_rne(w[j, c], ew)), -8), 7)
                        part += x4 * w4
                tot += part if per_weight else part << (ex + ew)
            for c in range(n4, k):
                tot += int(x[i, c]) * int(w[j, c])
            acc[i, j] = tot
    return acc.astype(np.int64)


@st.composite
def gemm_case(draw):
    g = draw(st.sampled_from([16, 32, 64]))
    k = draw(st.integers(1, 150))
    m = draw(st.sampled_from([1, 2, 5, 17]))
    n = draw(st.integers(1, 6))
    signed = draw(st.booleans())
    ngroups = -(-k // g)
    n4 = draw(st.sampled_from(sorted({min(k, i * g) for i in range(ngroups + 1)})))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    # channels with varied magnitudes so that different shifts appear
    mag = rng.choice([3, 8, 16, 40, 128], size=k)
    if signed:
        x = np.clip(rng.integers(-mag, mag, size=(m, k)), -128, 127)
    else:
        x = np.clip(rng.integers(0, 2 * mag, size=(m, k)), 0, 255)
    w = np.clip(rng.integers(-mag, mag, size=(n, k)), -127, 127)
    return x, w, n4, g, signed


@settings(max_examples=60, deadline=None)
@given(gemm_case(), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_mixed_gemm_matches_slow_reference(case, naive, dynamic, use_range, per_weight):
    x, w, n4, g, signed = case
    x_range = None
    if use_range and not dynamic:
        x_range = np.stack([x.min(0) - 1, x.max(0) + 1])
        x_range = np.clip(x_range, -128 if signed else 0, 127 if signed else 255)
    got = mixed_gemm(x, w, n4, group_size=g, x_signed=signed, extraction="naive" if naive else "effective",
                     x_range=x_range, dynamic=dynamic, weight_shift="weight" if per_weight else "group")
    want = slow_gemm(x, w, n4, g, signed, naive, x_range, dynamic, per_weight)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_zero_ratio_is_plain_int_gemm_and_full_ratio_differs():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (9, 130))
    w = rng.integers(-127, 128, (7, 130))
    np.testing.assert_array_equal(mixed_gemm(x, w, 0), x @ w.T)
    assert not np.array_equal(mixed_gemm(x, w, 130), x @ w.T)


def test_mixed_gemm_bad_input():
    x = np.zeros((2, 10), dtype=np.int64)
    w = np.zeros((3, 10), dtype=np.int64)
    with pytest.raises(ValueError, match="multiple of group_size"):
        mixed_gemm(x, w, 5, group_size=4)
    with pytest.raises(ValueError, match=r"\[M, K\]"):
        mixed_gemm(x, w[:, :9], 0)
    with pytest.raises(ValueError, match="unsigned"):
        mixed_gemm(x - 1, w, 0, x_signed=False)
    with pytest.raises(ValueError, match="x_range"):
        mixed_gemm(x, w, 0, x_range=np.zeros((2, 3)))


def _im2col_reference(x, w, n4, order, g, signed, stride, padding, dynamic):
    """Conv as per-position GEMMs through slow_gemm-like lowering, in numpy."""
    b, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    xo = x[:, order]
    wo_ = w[:, order]
    xpo = xp[:, order]
    out = np.zeros((b, o, ho, wo), dtype=np.int64)
    lo4, hi4 = (-8, 7) if signed else (0, 15)
    for a in range(0, n4, g):
        z = min(a + g, n4)
        if dynamic:
            ex = np.array([_shift(xo[i, a:z].min(), xo[i, a:z].max(), signed, False) for i in range(b)])
        else:
            ex = np.full(b, _shift(xo[:, a:z].min(), xo[:, a:z].max(), signed, False))
        ew = np.array([_shift(wo_[j, a:z].min(), wo_[j, a:z].max(), True, False) for j in range(o)])
        x4 = np.clip(rshift_rne(xpo[:, a:z], ex.reshape(-1, 1, 1, 1)), lo4, hi4)
        w4 = np.clip(rshift_rne(wo_[:, a:z], ew.reshape(-1, 1, 1, 1)), -8, 7)
        for i in range(ho):
            for j in range(wo):
                patch = x4[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                part = np.einsum("bchw,ochw->bo", patch, w4)
                out[:, :, i, j] += part << (ex[:, None] + ew[None, :])
    for i in range(ho):
        for j in range(wo):
            patch = xpo[:, n4:, i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[:, :, i, j] += np.einsum("bchw,ochw->bo", patch, wo_[:, n4:])
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([16, 32]), st.booleans(), st.booleans(),
       st.sampled_from([1, 2]), st.sampled_from([0, 1]))
def test_mixed_conv_matches_im2col_reference(seed, g, signed, dynamic, stride, padding):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(1, 70))
    x = rng.integers(-128 if signed else 0, 128 if signed else 256, (2, c, 5, 5)) >> rng.integers(0, 5, (1, c, 1, 1))
    w = rng.integers(-127, 128, (3, c, 3, 3)) >> rng.integers(0, 5, (3, c, 1, 1))
    order = rng.permutation(c)
    n4 = min(c, g * int(rng.integers(0, -(-c // g) + 1)))
    got = mixed_conv2d(x, w, n4, order=order, group_size=g, x_signed=signed, dynamic=dynamic,
                       stride=stride, padding=padding)
    want = _im2col_reference(x, w, n4, order, g, signed, stride, padding, dynamic)
    np.testing.assert_array_equal(got, want)


def test_conv_1x1_equals_gemm():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (4, 130, 1, 1))
    w = rng.integers(-127, 128, (5, 130, 1, 1))
    for dyn in (False, True):
        a = mixed_conv2d(x, w, 128, x_signed=False, dynamic=dyn)[:, :, 0, 0]
        b = mixed_gemm(x[:, :, 0, 0], w[:, :, 0, 0], 128, x_signed=False, dynamic=dyn)
        np.testing.assert_array_equal(a, b)
    ref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    np.testing.assert_array_equal(mixed_conv2d(x, w, 0), ref)
