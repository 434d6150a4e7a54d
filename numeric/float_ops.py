"""The one shared implementation of the non-linear float ops (docs/numeric_contract.md).

LayerNorm, softmax and GELU dequantize their integer input, compute in float32 and
requantize (round half to even, clamp). The quant reference, the NPU simulator's vector
unit and the GPU path all call these functions, so they agree bit for bit. Every function
reduces over the last axis only, on a C-contiguous copy, so the result of a row depends
on that row alone (tiling rows differently cannot change a value).
"""

from __future__ import annotations

import math

import numpy as np

from .rounding import quantize_float


def _deq(codes, scale):
    return np.ascontiguousarray(np.asarray(codes, dtype=np.float32) * np.float32(scale))


def layernorm(codes, in_scale, gamma, beta, eps, out_scale, out_signed=True):
    """LayerNorm over the last axis; ``gamma``/``beta`` float arrays of that length."""
    x = _deq(codes, in_scale)
    mean = x.mean(axis=-1, keepdims=True, dtype=np.float32)
    xc = x - mean
    var = (xc * xc).mean(axis=-1, keepdims=True, dtype=np.float32)
    y = xc / np.sqrt(var + np.float32(eps))
    y = y * np.asarray(gamma, dtype=np.float32) + np.asarray(beta, dtype=np.float32)
    return quantize_float(y.astype(np.float32), out_scale, out_signed)


def softmax(codes, in_scale, out_scale, out_signed=False):
    """Softmax over the last axis."""
    x = _deq(codes, in_scale)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x, dtype=np.float32)
    y = e / e.sum(axis=-1, keepdims=True, dtype=np.float32)
    return quantize_float(y, out_scale, out_signed)


_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))


def _erf32(x):
    # float32 erf through the float64 libm, rounded back: deterministic on every path
    from scipy.special import erf  # scipy is a numpy companion; imported lazily

    return erf(x.astype(np.float64)).astype(np.float32)


def gelu(codes, in_scale, out_scale, out_signed=True):
    """Exact (erf) GELU."""
    x = _deq(codes, in_scale)
    y = x * np.float32(0.5) * (np.float32(1.0) + _erf32(x * _SQRT_HALF))
    return quantize_float(y.astype(np.float32), out_scale, out_signed)


def float_gelu(x):
    """The float GELU used by the float model path (for reference/tests)."""
    x = np.asarray(x, dtype=np.float32)
    return x * np.float32(0.5) * (np.float32(1.0) + _erf32(x * _SQRT_HALF))
