"""Hardware side of 4-bit extraction: OR-reduce of magnitudes, and operand lowering.

Dynamic extraction (docs/numeric_contract.md, "4-bit lowering"): as the producer's output unit writes codes, it ORs each
code's magnitude bits into a per-group mask; ``v >= 0`` contributes ``v``, ``v < 0``
contributes ``~v`` (= -v - 1). The bit length of the mask is then exactly
``bits(lo, hi) - 1`` for signed codes and ``bits(lo, hi)`` for unsigned ones, so the
shift ``e = max(0, bits - 4)`` equals ``numeric.extraction.shift_for_range`` of the actual
range. The lowering itself is ``numeric.extraction.lower4`` (one implementation).
"""

from __future__ import annotations

import numpy as np

from numeric.extraction import lower4  # noqa: F401  (re-exported: the one lowering)


def magnitude_bits(codes) -> np.ndarray:
    """Per-code magnitude pattern that the OR-reduce accumulates."""
    v = np.asarray(codes, dtype=np.int64)
    return np.where(v >= 0, v, ~v)


def or_reduce_groups(codes, bounds, axis_rows=None) -> np.ndarray:
    """OR masks per group of channels (last axis).

    ``codes`` [..., C]; ``bounds`` [(start, stop), ...]. With ``axis_rows=None`` the
    reduce runs over everything but the last axis (one mask per group); otherwise
    ``codes`` is [S, ..., C] and one mask per sample ``S`` and group is returned.
    """
    mag = magnitude_bits(codes)
    if axis_rows is None:
        mag = mag.reshape(1, -1, mag.shape[-1])
    else:
        mag = mag.reshape(mag.shape[0], -1, mag.shape[-1])
    out = np.zeros((mag.shape[0], len(bounds)), dtype=np.int64)
    for g, (a, z) in enumerate(bounds):
        if z > a and mag.shape[1]:
            out[:, g] = np.bitwise_or.reduce(mag[:, :, a:z].reshape(mag.shape[0], -1), axis=1)
    return out if axis_rows is not None else out[0]


def _bit_length(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    n = np.zeros(v.shape, dtype=np.int64)
    while np.any(v > 0):
        nz = v > 0
        n += nz
        v = np.where(nz, v >> 1, 0)
    return n


def shifts_from_masks(masks, signed: bool, extraction: str = "effective") -> np.ndarray:
    """4-bit shift per group from OR masks: ``max(0, bits - 4)`` (naive: 4)."""
    masks = np.asarray(masks, dtype=np.int64)
    if extraction == "naive":
        return np.full(masks.shape, 4, dtype=np.int64)
    bits = np.maximum(_bit_length(masks) + (1 if signed else 0), 1)
    return np.maximum(bits - 4, 0)


def pe_weight_shift(w, extraction: str = "effective") -> np.ndarray:
    """Per-weight shift of ``weight_shift="weight"``: each 8-bit weight's own range."""
    w = np.asarray(w, dtype=np.int64)
    if extraction == "naive":
        return np.full(w.shape, 4, dtype=np.int64)
    return shifts_from_masks(magnitude_bits(w), True, extraction)
