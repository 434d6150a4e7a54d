import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npu_sim.extract import or_reduce_groups, pe_weight_shift, shifts_from_masks
from quant.extraction import shift_for_range, weight_elem_shifts


@settings(max_examples=50, deadline=None)
@given(lo=st.integers(-128, 127), span=st.integers(0, 255), signed=st.booleans(),
       n=st.integers(1, 20), seed=st.integers(0, 2**31), naive=st.booleans())
def test_or_reduce_shift_equals_range_shift(lo, span, signed, n, seed, naive):
    if not signed:
        lo = abs(lo)
    hi = min(lo + span, 127 if signed else 255)
    rng = np.random.default_rng(seed)
    v = rng.integers(lo, hi + 1, n)
    v[0], v[-1] = lo, hi
    ext = "naive" if naive else "effective"
    mask = or_reduce_groups(v[None, :], [(0, n)])
    assert shifts_from_masks(mask, signed, ext)[0] == shift_for_range(v.min(), v.max(), signed, ext)


def test_pe_weight_shift_matches_quant():
    w = np.arange(-128, 128)
    assert np.array_equal(pe_weight_shift(w), weight_elem_shifts(w))
    assert np.array_equal(pe_weight_shift(w, "naive"), weight_elem_shifts(w, "naive"))


def test_per_sample_masks():
    x = np.zeros((2, 3, 4), np.int64)
    x[0, 1, 2] = 100
    x[1, 0, 0] = -3
    m = or_reduce_groups(x, [(0, 2), (2, 4)], axis_rows=0)
    assert m.tolist() == [[0, 100], [2, 0]]
