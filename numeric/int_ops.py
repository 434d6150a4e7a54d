"""Integer semantics of the non-GEMM ops on requantized codes (docs/numeric_contract.md).

One function per op; the quant runtime and the NPU's vector unit both call these.
Codes are int64 numpy arrays; scales are floats; every rescale is dyadic.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import AccumulatorOverflowError
from .ranges import INT32_MAX, INT32_MIN, code_range
from .rounding import quantize_multiplier, requantize


def act_scale(lo: float, hi: float) -> tuple[float, bool]:
    """(scale, signed) of an activation whose calibrated range is [lo, hi]."""
    signed = lo < 0
    mag = max(abs(lo), abs(hi)) if signed else hi
    mag = max(float(mag), 1e-8)
    return mag / (127.0 if signed else 255.0), signed


def out_clamp(signed: bool, act: str | None, scale: float) -> tuple[int, int]:
    """Clamp bounds of a requantized output with an optional fused ReLU/ReLU6."""
    lo, hi = code_range(signed)
    if act in ("relu", "relu6"):
        lo = max(lo, 0)
    if act == "relu6":
        hi = min(hi, int(round(6.0 / scale)))
    return lo, hi


def check_int32(acc, where: str):
    """Raise ``AccumulatorOverflowError`` naming the layer if ``acc`` leaves int32."""
    if acc.size and (acc.max() > INT32_MAX or acc.min() < INT32_MIN):
        raise AccumulatorOverflowError(
            f"int32 accumulator overflow in layer '{where}': values reach "
            f"[{int(acc.min())}, {int(acc.max())}]")


def gemm_epilogue_tables(x_scale, w_scale, out_scale):
    """Per-output-channel dyadic (M, s) for requantizing ``acc * x_scale * w_scale[n]``."""
    ms = [quantize_multiplier(x_scale * float(ws) / out_scale) for ws in np.atleast_1d(w_scale)]
    return (np.array([m for m, _ in ms], dtype=np.int64), np.array([s for _, s in ms], dtype=np.int64))


def two_input_multipliers(sa: float, sb: float, so: float) -> tuple[int, int, int]:
    """(Ma, Mb, s) with a shared shift: ``y = (a*Ma + b*Mb + 2**(s-1)) >> s``."""
    ra, rb = sa / so, sb / so
    top = max(ra, rb)
    s = 30 - math.frexp(top)[1]  # top * 2**s in [2**29, 2**30)
    s = max(1, min(62, s))
    return int(round(ra * 2**s)), int(round(rb * 2**s)), s


def add(a, b, ma: int, mb: int, s: int, lo: int, hi: int):
    """Residual add of two code tensors at their own scales into the output scale."""
    acc = np.asarray(a, dtype=np.int64) * ma + np.asarray(b, dtype=np.int64) * mb
    return requantize(acc, 1, s, lo, hi)


def rescale(codes, m: int, s: int, lo: int, hi: int):
    """Move codes to another scale: ``clamp((codes*m + 2**(s-1)) >> s)``."""
    return requantize(codes, m, s, lo, hi)


def clamp(codes, lo: int, hi: int):
    return np.clip(np.asarray(codes, dtype=np.int64), lo, hi)


def sum_requant(sums, m: int, s: int, lo: int, hi: int):
    """Average pooling / mean: integer window sums times a dyadic ``1/n * s_in/s_out``."""
    return requantize(sums, m, s, lo, hi)
