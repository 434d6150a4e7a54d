"""Compile-time tables of a GEMM layer in its memory channel order: weights, bias,
requantization multipliers and shifts, 4-bit shift tables.

Everything here is derived from ``quant``'s ``GemmLayer`` with the same functions the
quant runtime uses, permuted to the channel orders the layout pass chose.
"""

from __future__ import annotations

import numpy as np

from numeric.ranges import group_bounds
from quant.errors import AccumulatorOverflowError
from quant.extraction import shift_for_range
from quant.rounding import INT32_MAX, INT32_MIN


def ident(n):
    return np.arange(n, dtype=np.int64)


def weights_nk(L, p_in, p_out) -> np.ndarray:
    """Dense weights as [N, kh, kw, C] (conv) or [N, 1, 1, K] (linear), memory orders."""
    w = L.w_codes[p_out][:, p_in]
    if w.ndim == 2:
        return w[:, None, None, :]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


def group_spans(c: int, g: int):
    return group_bounds(c, c, g)


def weight_shift_table(w_nk, group_size, extraction) -> np.ndarray:
    """[n_groups, N]: per output channel and (full) channel group, over every kernel tap."""
    n, _, _, c = w_nk.shape
    spans = group_spans(c, group_size)
    out = np.zeros((len(spans), n), dtype=np.int64)
    for g, (a, b) in enumerate(spans):
        blk = w_nk[..., a:b].reshape(n, -1)
        out[g] = shift_for_range(blk.min(axis=1), blk.max(axis=1), True, extraction)
    return out


def act_shift_table(x_range, p_in, group_size, signed, extraction) -> np.ndarray:
    """[n_groups]: static activation shift per channel group from the calibrated ranges."""
    lo, hi = x_range[0][p_in], x_range[1][p_in]
    spans = group_spans(len(p_in), group_size)
    return np.array([int(shift_for_range(lo[a:b].min(), hi[a:b].max(), signed, extraction))
                     for a, b in spans], dtype=np.int64)


def int32_table(name, values) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64)
    if v.size and (v.max() > INT32_MAX or v.min() < INT32_MIN):
        raise AccumulatorOverflowError(f"layer '{name}': a table value does not fit int32 "
                                       f"([{int(v.min())}, {int(v.max())}])")
    return v.astype(np.int32)


def float_bits(values) -> np.ndarray:
    """float32 values as the int32 bit patterns the param buffer holds."""
    return np.asarray(values, dtype=np.float32).view(np.int32)
