import math
from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from quant.rounding import quantize_float, quantize_multiplier, requantize, rshift_rne


def _rne(v, e):
    q = Fraction(v, 2**e)
    f = math.floor(q)
    r = q - f
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and f % 2 == 1):
        f += 1
    return f


@given(st.integers(-(2**20), 2**20), st.integers(0, 12))
def test_rshift_matches_exact_rational_rounding(v, e):
    assert int(rshift_rne(v, e)) == _rne(v, e)


def test_rshift_half_to_even_examples():
    assert rshift_rne(np.array([-3, -1, 1, 3, 5]), 1).tolist() == [-2, 0, 0, 2, 2]
    assert rshift_rne(np.array([7]), 0).tolist() == [7]


@given(st.floats(1e-6, 1e3))
def test_quantize_multiplier_is_close(real):
    m, s = quantize_multiplier(real)
    assert 2**30 <= m < 2**31
    assert abs(m / 2**s - real) <= real * 2**-30


@given(st.integers(-(2**31), 2**31 - 1), st.floats(1e-5, 0.9))
def test_requantize_is_round_half_up(acc, real):
    m, s = quantize_multiplier(real)
    got = int(requantize(acc, m, s, -(2**40), 2**40))
    want = math.floor(Fraction(acc * m, 2**s) + Fraction(1, 2))
    assert got == want


def test_quantize_float_clamps_and_rounds_even():
    assert quantize_float([0.5, 1.5, 1000.0, -1000.0], 1.0, True).tolist() == [0, 2, 127, -128]
    assert quantize_float([-3.0, 300.0], 1.0, False).tolist() == [0, 255]
