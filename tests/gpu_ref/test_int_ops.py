"""Torch integer primitives against the quant reference, exhaustively on small ranges."""

import numpy as np
import pytest
import torch

import quant
from gpu_ref import int_ops


def test_rshift_rne_matches_quant_exhaustively():
    v = np.arange(-1200, 1200)
    for e in range(0, 9):
        got = int_ops.rshift_rne(torch.tensor(v), e).numpy()
        assert np.array_equal(got, quant.rshift_rne(v, e)), e


def test_rshift_rne_rounds_half_to_even():
    got = int_ops.rshift_rne(torch.tensor([1, 3, 5, -1, -3, 2, 6]), 1).tolist()
    assert got == [0, 2, 2, 0, -2, 1, 3]


def test_rshift_rne_rejects_negative_shift():
    with pytest.raises(ValueError):
        int_ops.rshift_rne(torch.tensor([4]), torch.tensor([-1]))


@pytest.mark.parametrize("signed", [True, False])
def test_bits_and_shift_for_range_match_quant(signed):
    rng = np.random.default_rng(3)
    lo = rng.integers(-400, 400, 4000)
    if not signed:
        lo = np.abs(lo)
    hi = lo + rng.integers(0, 400, 4000)
    lo[:3], hi[:3] = 0, [0, 1, 2**40]
    assert np.array_equal(int_ops.bits_for_range(torch.tensor(lo), torch.tensor(hi), signed).numpy(),
                          quant.bits_for_range(lo, hi, signed))
    for ext in ("effective", "naive"):
        got = int_ops.shift_for_range(torch.tensor(lo), torch.tensor(hi), signed, ext).numpy()
        assert np.array_equal(got, quant.shift_for_range(lo, hi, signed, ext))


def test_effective_shift_keeps_4bit_groups_exact():
    # a group already in [-8, 7] needs no shift (docs/numeric_contract.md: the range, not max |code|)
    assert int(int_ops.shift_for_range(-8, 7, True)) == 0
    assert int(int_ops.shift_for_range(0, 15, False)) == 0
    assert int(int_ops.shift_for_range(-9, 7, True)) == 1


def test_unsigned_negative_range_rejected():
    with pytest.raises(ValueError):
        int_ops.bits_for_range(torch.tensor([-1]), torch.tensor([3]), False)


@pytest.mark.parametrize("signed", [True, False])
def test_lower4_matches_quant(signed):
    v = np.arange(-128, 128) if signed else np.arange(0, 256)
    for e in range(0, 6):
        got = int_ops.lower4(torch.tensor(v), e, signed).numpy()
        assert np.array_equal(got, quant.lower4(v, e, signed))
