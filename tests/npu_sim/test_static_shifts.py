"""The simulator's own shift tables (npu_sim/static_shifts.py) equal the quant reference's
shift planning (quant.mixed_gemm / quant.mixed_conv): two independent implementations of
the rule in docs/numeric_contract.md, compared on random ranges, weights and orders."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npu_sim.errors import SimError
from npu_sim.static_shifts import activation_shifts, weight_shifts
from numeric.ranges import group_bounds
from quant.mixed_conv import conv_groups, conv_shifts
from quant.mixed_gemm import activation_shifts as quant_activation_shifts
from quant.mixed_gemm import plan_shifts

EXTRACTION = st.sampled_from(["effective", "naive"])


def _ranges(rng, k, signed, width):
    """[2, k] per-channel (min, max) codes: random spans of random widths."""
    lo_code, hi_code = (-128, 127) if signed else (0, 255)
    lo = rng.integers(lo_code, hi_code + 1, k)
    hi = np.minimum(lo + rng.integers(0, width + 1, k), hi_code)
    return np.stack([lo, hi]).astype(np.int64)


def _case(seed, k, g_pow, groups_on):
    rng = np.random.default_rng(seed)
    g = 8 << g_pow  # 8, 16, 32
    n4 = min(k, groups_on * g)
    return rng, g, n4, group_bounds(n4, k, g)


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 80), g_pow=st.integers(0, 2),
       groups_on=st.integers(0, 10), signed=st.booleans(), width=st.sampled_from([0, 3, 20, 255]),
       extraction=EXTRACTION)
def test_static_activation_shifts_from_ranges(seed, k, g_pow, groups_on, signed, width,
                                              extraction):
    rng, _, _, bounds = _case(seed, k, g_pow, groups_on)
    xr = _ranges(rng, k, signed, width)
    want = quant_activation_shifts(np.zeros((1, 0, k), np.int64), xr, bounds, signed,
                                   extraction, dynamic=False)
    got = activation_shifts(xr, bounds, signed, extraction)
    assert got.dtype == np.int64 and np.array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 80), m=st.integers(0, 6),
       g_pow=st.integers(0, 2), groups_on=st.integers(0, 10), signed=st.booleans(),
       extraction=EXTRACTION, weight_shift=st.sampled_from(["group", "weight"]))
def test_gemm_tables_equal_quant_plan(seed, k, m, g_pow, groups_on, signed, extraction,
                                      weight_shift):
    rng, g, n4, bounds = _case(seed, k, g_pow, groups_on)
    lo, hi = (-128, 127) if signed else (0, 255)
    x = rng.integers(lo, hi + 1, (m, k)) >> rng.integers(0, 8)  # narrow ranges too
    w = rng.integers(-128, 128, (5, k)) >> rng.integers(0, 8, (5, 1))
    plan = plan_shifts(x[None], w, n4, group_size=g, x_signed=signed, extraction=extraction,
                       weight_shift=weight_shift)
    assert np.array_equal(activation_shifts(x, bounds, signed, extraction), plan.x_shift)
    assert np.array_equal(weight_shifts(w, bounds, weight_shift, extraction), plan.w_shift)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), c=st.integers(1, 40), g_pow=st.integers(0, 1),
       groups_on=st.integers(0, 6), signed=st.booleans(), from_range=st.booleans(),
       extraction=EXTRACTION, weight_shift=st.sampled_from(["group", "weight"]))
def test_conv_tables_equal_quant_conv_shifts(seed, c, g_pow, groups_on, signed, from_range,
                                             extraction, weight_shift):
    """Conv: channels permuted by a priority order, weights over every kernel position."""
    rng, g, n4, bounds = _case(seed, c, g_pow, groups_on)
    order = rng.permutation(c)
    lo, hi = (-128, 127) if signed else (0, 255)
    x = rng.integers(lo, hi + 1, (2, c, 3, 3)) >> rng.integers(0, 8, (1, c, 1, 1))
    w = rng.integers(-128, 128, (4, c, 3, 3)) >> rng.integers(0, 8, (4, c, 1, 1))
    xr = _ranges(rng, c, signed, 40) if from_range else None
    xs, ws = conv_shifts(x, w, conv_groups(order, n4, g), x_signed=signed,
                         extraction=extraction, x_range=xr, dynamic=False,
                         weight_shift=weight_shift)
    xh = x[:, order].transpose(0, 2, 3, 1)
    wh = w[:, order].transpose(0, 2, 3, 1)
    got_x = activation_shifts(xh if xr is None else xr[:, order], bounds, signed, extraction)
    assert np.array_equal(got_x, xs)
    want_w = ws if weight_shift == "group" else ws[:, order].transpose(0, 2, 3, 1)[..., :n4]
    assert np.array_equal(weight_shifts(wh, bounds, weight_shift, extraction), want_w)


def test_a_wrong_rule_would_be_caught():
    """The comparison is not vacuous: the two sides see ranges whose shifts differ."""
    xr = np.array([[-1, 0], [1, 100]])  # group 0 fits 4 bits; group 1 needs 8
    got = activation_shifts(xr, [(0, 1), (1, 2)], True)
    assert got.tolist() == [0, 4]
    assert activation_shifts(xr, [(0, 1), (1, 2)], True, "naive").tolist() == [4, 4]


def test_unsigned_range_with_negative_code_is_refused():
    with pytest.raises(SimError, match="negative"):
        activation_shifts(np.array([[-1], [5]]), [(0, 1)], False, where="run_gemm")
    with pytest.raises(ValueError):  # the quant reference refuses it too
        quant_activation_shifts(None, np.array([[-1], [5]]), [(0, 1)], False, "effective",
                                False)
