"""The exact mixed 4/8-bit GEMM and convolution of the numeric contract (docs/numeric_contract.md; the quant reference).

Channels are in *priority order*: the first ``n4`` feature channels run in 4 bits, in
groups of ``group_size``; the rest run in 8 bits. For 4-bit group ``g``::

    x4 = clamp(rshift_rne(x8, e_x[g]), lo, hi)      # lo, hi = -8, 7 or 0, 15
    w4 = clamp(rshift_rne(w8, e_w[n, g]), -8, 7)
    acc[m, n] += (sum_k x4 * w4) << (e_x[g] + e_w[n, g])

Integer sums are computed with float BLAS products of integer-valued arrays: float32 when
no partial sum can reach 2**24 (bounded from the operands' magnitudes and K), float64
otherwise (exact below 2**53; 8-bit codes allow K up to ~2.8e11); converted to int64
before any shift.
"""

from __future__ import annotations

import numpy as np

from numeric.checks import check_codes, check_range_table
from numeric.checks import check_mixed_args as check_args
from numeric.extraction import (  # noqa: F401  (ShiftPlan, WEIGHT_SHIFTS re-exported)
    WEIGHT_SHIFTS,
    ShiftPlan,
    lower4,
    shift_for_range,
    weight_elem_shifts,
    weight_group_shifts,
)
from numeric.ranges import group_bounds


def activation_shifts(x_groups, x_range, bounds, x_signed, extraction, dynamic):
    """Activation shift per group.

    ``x_groups`` is [B, R, K] (samples, rows per sample, channels). Static: one shift per
    group from ``x_range`` ([2, K]; None means the range of ``x`` itself). Dynamic: one
    shift per sample and group from that sample's own values.
    """
    ng = len(bounds)
    if dynamic:
        out = np.zeros((x_groups.shape[0], ng), dtype=np.int64)
        for g, (a, b) in enumerate(bounds):
            blk = x_groups[:, :, a:b].reshape(x_groups.shape[0], (b - a) * x_groups.shape[1])
            if blk.size == 0:
                continue
            out[:, g] = shift_for_range(blk.min(axis=1), blk.max(axis=1), x_signed, extraction)
        return out
    out = np.zeros(ng, dtype=np.int64)
    for g, (a, b) in enumerate(bounds):
        if x_range is None:
            blk = x_groups[:, :, a:b]
            lo, hi = (int(blk.min()), int(blk.max())) if blk.size else (0, 0)
        else:
            lo, hi = int(np.min(x_range[0, a:b])), int(np.max(x_range[1, a:b]))
        out[g] = shift_for_range(lo, hi, x_signed, extraction)
    return out


def plan_shifts(x3, w2, n4, *, group_size=64, x_signed=True, extraction="effective",
                x_range=None, dynamic=False, weight_shift="group") -> ShiftPlan:
    """Shifts for a GEMM whose input is [B, R, K] and weights [N, K]."""
    k = w2.shape[1]
    bounds = group_bounds(n4, k, group_size)
    xs = activation_shifts(x3, x_range, bounds, x_signed, extraction, dynamic)
    if weight_shift == "group":
        ws = weight_group_shifts(w2, bounds, extraction)
    else:
        ws = weight_elem_shifts(w2[:, :n4], extraction)
    return ShiftPlan(bounds, xs, ws, weight_shift)


def exact_matmul(a, b):
    """Integer ``a @ b`` (int64 result), exact: float32 BLAS when no partial sum can reach
    2**24 (bounded from the largest magnitudes and K), else float64."""
    k = a.shape[-1]
    bound = (int(np.abs(a).max()) if a.size else 0) * (int(np.abs(b).max()) if b.size else 0) * k
    dt = np.float32 if bound < 2**24 else np.float64
    return np.rint(np.asarray(a, dtype=dt) @ np.asarray(b, dtype=dt)).astype(np.int64)


def _grouped_matmul(x3, w2, n4, plan: ShiftPlan, x_signed):
    """Core: x3 [B, R, K] codes, w2 [N, K] codes -> int64 [B, R, N]."""
    b, r, _ = x3.shape
    n = w2.shape[0]
    acc = np.zeros((b, r, n), dtype=np.int64)
    for g, (a, z) in enumerate(plan.bounds):
        ex = plan.x_shift[:, g] if plan.x_shift.ndim == 2 else plan.x_shift[g]
        ex_b = np.asarray(ex, dtype=np.int64).reshape(-1, 1, 1) if np.ndim(ex) else np.int64(ex)
        x4 = lower4(x3[:, :, a:z], ex_b, x_signed)
        if plan.weight_shift == "group":
            ew = plan.w_shift[:, g]
            w4 = lower4(w2[:, a:z], ew[:, None], True)
            part = exact_matmul(x4, w4.T)
            acc += part << (ex_b + ew[None, None, :])
        else:
            ewk = plan.w_shift[:, a:z]
            weff = lower4(w2[:, a:z], ewk, True) << ewk
            part = exact_matmul(x4, weff.T)
            acc += part << ex_b
    if n4 < w2.shape[1]:
        acc += exact_matmul(x3[:, :, n4:], w2[:, n4:].T)
    return acc


def mixed_gemm(x, w, n4, *, group_size=64, x_signed=True, extraction="effective",
               x_range=None, dynamic=False, weight_shift="group", return_plan=False):
    """Exact mixed-precision GEMM accumulators ``acc[m, n]`` (int64, before bias).

    ``x`` [M, K] activation codes and ``w`` [N, K] weight codes, both in priority order;
    ``n4`` leading 4-bit channels; ``x_range`` [2, K] per-channel calibrated min/max codes
    (static extraction; None = the range of ``x``); ``dynamic=True`` takes each row's own
    range per group. ``weight_shift="weight"`` gives every weight its own shift.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"mixed_gemm: need x [M, K] and w [N, K]; got {x.shape} and {w.shape}")
    check_args(n4, x.shape[1], group_size, extraction, weight_shift)
    x = x.astype(np.int64)
    w = w.astype(np.int64)
    check_codes(x, w, x_signed)
    x_range = check_range_table(x_range, x.shape[1])
    # dynamic: one "sample" per row; static: one sample holding all rows
    x3 = x[:, None, :] if dynamic else x[None, :, :]
    plan = plan_shifts(x3, w, n4, group_size=group_size, x_signed=x_signed,
                       extraction=extraction, x_range=x_range, dynamic=dynamic,
                       weight_shift=weight_shift)
    acc = _grouped_matmul(x3, w, n4, plan, x_signed)
    acc = acc[:, 0, :] if dynamic else acc[0]
    return (acc, plan) if return_plan else acc


def mixed_linear(x3, w, n4, *, group_size=64, x_signed=True, extraction="effective",
                 x_range=None, dynamic=False, weight_shift="group"):
    """Mixed GEMM over samples: ``x3`` [B, R, K]; dynamic ranges are per sample (image)."""
    x3 = np.asarray(x3, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if x3.ndim != 3 or w.ndim != 2 or x3.shape[2] != w.shape[1]:
        raise ValueError(f"mixed_linear: need x [B, R, K] and w [N, K]; got {x3.shape} and {w.shape}")
    check_args(n4, w.shape[1], group_size, extraction, weight_shift)
    check_codes(x3, w, x_signed)
    x_range = check_range_table(x_range, w.shape[1])
    plan = plan_shifts(x3, w, n4, group_size=group_size, x_signed=x_signed,
                       extraction=extraction, x_range=x_range, dynamic=dynamic,
                       weight_shift=weight_shift)
    return _grouped_matmul(x3, w, n4, plan, x_signed)
