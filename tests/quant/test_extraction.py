import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quant.extraction import bits_for_range, lower4, saturation_count, shift_for_range


def _bits_brute(lo, hi, signed):
    for b in range(1, 12):
        flo, fhi = (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if signed else (0, 2**b - 1)
        if flo <= lo and hi <= fhi:
            return b


@given(st.integers(-128, 127), st.integers(-128, 127))
def test_bits_signed_matches_brute_force(a, b):
    lo, hi = min(a, b), max(a, b)
    assert int(bits_for_range(lo, hi, True)) == _bits_brute(lo, hi, True)


@given(st.integers(0, 255), st.integers(0, 255))
def test_bits_unsigned_matches_brute_force(a, b):
    lo, hi = min(a, b), max(a, b)
    assert int(bits_for_range(lo, hi, False)) == _bits_brute(lo, hi, False)


def test_range_not_magnitude():
    # [-8, 7] needs 4 bits and is exact; max|code| = 8 would wrongly say 5
    assert int(shift_for_range(-8, 7, True)) == 0
    v = np.arange(-8, 8)
    assert (lower4(v, 0, True) == v).all()
    assert int(shift_for_range(0, 15, False)) == 0
    assert int(shift_for_range(-9, 7, True)) == 1
    assert int(shift_for_range(0, 16, False)) == 1
    assert (shift_for_range([0], [1], True, "naive") == 4).all()


@given(st.integers(0, 4), st.booleans(), st.lists(st.integers(-8, 7), min_size=1, max_size=40))
def test_extraction_exact_when_group_fits_four_bits(e, signed, vals):
    v = np.array(vals if signed else [x + 8 for x in vals]) << e
    v = np.clip(v, -128 if signed else 0, 127 if signed else 255)
    v = v - (v % (1 << e))  # multiples of 2**e within the 8-bit range
    shift = int(shift_for_range(v.min(), v.max(), signed))
    assert shift <= e
    assert (lower4(v, shift, signed) << shift == v).all()


@given(st.integers(-128, 0), st.integers(0, 127))
def test_effective_error_not_above_naive_signed(lo, hi):
    v = np.arange(lo, hi + 1)
    e = int(shift_for_range(lo, hi, True))
    eff = ((lower4(v, e, True) << e) - v) ** 2
    nai = ((lower4(v, 4, True) << 4) - v) ** 2
    assert eff.sum() <= nai.sum()


@given(st.integers(0, 255))
def test_effective_error_not_above_naive_unsigned(hi):
    v = np.arange(0, hi + 1)
    e = int(shift_for_range(0, hi, False))
    eff = ((lower4(v, e, False) << e) - v) ** 2
    nai = ((lower4(v, 4, False) << 4) - v) ** 2
    assert eff.sum() <= nai.sum()


def test_top_edge_clamp_is_part_of_contract():
    # 31 needs 6 bits -> e = 2; 31 / 4 = 7.75 rounds to 8 and clamps to 7 (not saturation)
    assert int(shift_for_range(0, 31, True)) == 2
    assert int(lower4(31, 2, True)) == 7
    assert saturation_count([31], 2, True) == 0
    assert saturation_count([32, -33, 5], 2, True) == 2


@given(st.lists(st.integers(-128, 127), min_size=2, max_size=64), st.integers(1, 3))
def test_static_saturates_only_beyond_calibration(vals, grow):
    v = np.array(vals)
    calib = v[: len(v) // 2 + 1]
    e = int(shift_for_range(calib.min(), calib.max(), True))
    inside = v[(v >= calib.min()) & (v <= calib.max())]
    assert saturation_count(inside, e, True) == 0  # within calibration: never
    e_dyn = int(shift_for_range(v.min(), v.max(), True))
    assert saturation_count(v, e_dyn, True) == 0  # dynamic: never


def test_bad_extraction_name():
    with pytest.raises(ValueError, match="extraction"):
        shift_for_range(0, 1, True, "msb")
