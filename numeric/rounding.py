"""Integer rounding primitives of the numeric contract (docs/numeric_contract.md).

* ``rshift_rne``: divide by ``2**e`` rounding half to even (4-bit lowering).
* ``quantize_multiplier`` / ``requantize``: dyadic requantization
  ``(acc * M + 2**(s-1)) >> s`` (round half up), then clamp.
* ``quantize_float``: float -> integer code, round half to even, clamp (used after the
  float ops and for activations entering the model).

All functions work on numpy integer arrays (int64 is used internally so nothing wraps).
"""

from __future__ import annotations

import math

import numpy as np

from .ranges import INT32_MAX, INT32_MIN, code_range  # noqa: F401  (re-exported)


def rshift_rne(v, e):
    """``v / 2**e`` rounded half to even, for integer ``v`` and shifts ``e >= 0``.

    ``e`` broadcasts against ``v``; where ``e == 0`` the value is returned unchanged.
    Requires ``abs(v) + 2**(e-1) < 2**63`` (any int32 product or code qualifies).
    """
    v = np.asarray(v, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    if np.any(e < 0):
        raise ValueError("rshift_rne: shift must be >= 0")
    # floor((v + h - 1 + lsb(v >> e)) / 2**e) with h = 2**(e-1): a remainder above h
    # rounds up, exactly h rounds up only to an even quotient; e == 0 adds nothing
    h = np.left_shift(np.int64(1), e) >> 1
    on = (h > 0).astype(np.int64)
    return (v + h - on + ((v >> e) & on)) >> e


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Dyadic form of a positive real multiplier: ``real ~= M / 2**s``.

    ``M`` is an int32 in [2**30, 2**31) (or 0 for a zero multiplier) and ``s`` in [0, 62].
    """
    real = float(real)
    if not math.isfinite(real) or real < 0:
        raise ValueError(f"quantize_multiplier: multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 0
    mant, exp = math.frexp(real)  # real = mant * 2**exp, mant in [0.5, 1)
    m = round(mant * (1 << 31))
    if m == (1 << 31):
        m //= 2
        exp += 1
    s = 31 - exp
    if s > 62:  # too small to represent: shrink the mantissa
        m >>= s - 62
        s = 62
    if s < 0:
        raise ValueError(f"quantize_multiplier: multiplier {real} too large (>= 2**31)")
    return int(m), int(s)


def requantize(acc, m, s, lo: int, hi: int):
    """``clamp((acc * m + 2**(s-1)) >> s, lo, hi)`` in int64; ``m``/``s`` broadcast."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    rnd = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    y = (acc * m + rnd) >> s
    return np.clip(y, lo, hi)


def quantize_float(x, scale: float, signed: bool, bits: int = 8):
    """Float values -> integer codes: ``clamp(rint(x / scale))`` (half to even)."""
    lo, hi = code_range(signed, bits)
    q = np.rint(np.asarray(x, dtype=np.float64) / float(scale))
    return np.clip(q, lo, hi).astype(np.int64)
