"""Effective bit extraction (docs/numeric_contract.md, "4-bit lowering"): which 4 bits of each 8-bit code a group keeps.

A group of channels is lowered to 4 bits by a right shift ``e`` (round half to even)
and a clamp to the 4-bit range. The *effective* shift is the smallest that makes the
group's code range fit 4 bits: ``e = max(0, bits(lo, hi) - 4)``; *naive* extraction
keeps the top 4 bits of the 8-bit code (``e = 4``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rounding import rshift_rne

EXTRACTIONS = ("effective", "naive")
WEIGHT_SHIFTS = ("group", "weight")


@dataclass
class ShiftPlan:
    """Shifts used by one mixed GEMM: what the NPU's shift tables hold.

    ``x_shift``: [n_groups] (static) or [B, n_groups] (dynamic, one row per sample);
    ``w_shift``: [N, n_groups] (``"group"``) or [N, n4] (``"weight"``, per weight).
    ``bounds``: (start, stop) channel span of each 4-bit group.
    """

    bounds: list
    x_shift: np.ndarray
    w_shift: np.ndarray
    weight_shift: str = "group"


def bits_for_range(lo, hi, signed: bool):
    """Smallest bit width ``b`` such that every code in ``[lo, hi]`` fits the b-bit format.

    Signed: ``[-2**(b-1), 2**(b-1) - 1]``; unsigned: ``[0, 2**b - 1]``. Vectorized;
    an empty or all-zero range needs 1 bit.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    if signed:
        # need 2**(b-1) >= -lo  and  2**(b-1) - 1 >= hi
        need = np.maximum(np.maximum(-lo, 0), np.maximum(hi + 1, 0))
        b = 1 + _ceil_log2(need)
    else:
        if np.any(lo < 0):
            raise ValueError("bits_for_range: unsigned range with negative lower bound")
        b = _ceil_log2(np.maximum(hi, 0) + 1)
    return np.maximum(b, 1)


def _ceil_log2(v):
    """ceil(log2(v)) for integers v >= 0 (0 and 1 give 0)."""
    v = np.asarray(v, dtype=np.int64)
    # ceil(log2(v)) == bit_length(v - 1) for v >= 1; frexp's exponent is the bit length
    # (exact: the codes here are far below 2**53)
    return np.frexp(np.maximum(v - 1, 0).astype(np.float64))[1].astype(np.int64)


def shift_for_range(lo, hi, signed: bool, extraction: str = "effective"):
    """The 4-bit shift ``e`` for a group whose codes lie in ``[lo, hi]``."""
    if extraction == "naive":
        return np.full(np.shape(lo), 4, dtype=np.int64)
    if extraction != "effective":
        raise ValueError(f"extraction must be one of {EXTRACTIONS}, got {extraction!r}")
    return np.maximum(0, bits_for_range(lo, hi, signed) - 4)


def lower4(codes, e, signed: bool):
    """``clamp(rshift_rne(codes, e), lo4, hi4)``: the 4-bit codes of a group."""
    lo, hi = (-8, 7) if signed else (0, 15)
    return np.clip(rshift_rne(codes, e), lo, hi)


def weight_group_shifts(w, bounds, extraction: str = "effective"):
    """Per output channel and group shift ``e_w[n, g]`` from the exact weight ranges."""
    w = np.asarray(w, dtype=np.int64)
    out = np.zeros((w.shape[0], len(bounds)), dtype=np.int64)
    for g, (a, b) in enumerate(bounds):
        blk = w[:, a:b].reshape(w.shape[0], -1)
        out[:, g] = shift_for_range(blk.min(axis=1), blk.max(axis=1), True, extraction)
    return out


def weight_elem_shifts(w, extraction: str = "effective"):
    """Per-weight shift (``weight_shift="weight"`` granularity): each code its own range."""
    w = np.asarray(w, dtype=np.int64)
    return shift_for_range(np.minimum(w, 0), np.maximum(w, 0), True, extraction)


def saturation_count(codes, e, signed: bool) -> int:
    """Codes outside the (4 + e)-bit range that shift ``e`` was chosen for.

    Such a code is clamped by more than the rounding step: this is what static
    extraction suffers when run-time values exceed calibration. (Codes inside that range
    can still clamp by one step at the top edge, e.g. 31 >> 2 rounds to 8 -> 7; that is
    part of the contract, not saturation.)
    """
    codes = np.asarray(codes, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    if signed:
        lo, hi = -(2 ** (3 + e)), 2 ** (3 + e) - 1
    else:
        lo, hi = 0, 2 ** (4 + e) - 1
    return int(np.count_nonzero((codes < lo) | (codes > hi)))
