"""``gpu_ref.mixed_gemm`` / ``mixed_linear``: the mixed GEMM of docs/numeric_contract.md in torch ops, any device.

Same arguments and integer result as ``quant.mixed_gemm``; see :mod:`gpu_ref.tensor_io`
for the return type and :mod:`gpu_ref.grouped_product` for how the product is formed.
Extra keyword-only arguments: ``backend`` (``"auto"``, ``"int8"``, ``"float64"``,
``"int64"``; see :mod:`gpu_ref.int_matmul`) and ``device``.
"""

from __future__ import annotations

import numpy as np
import torch

from numeric.checks import check_codes, check_range_table
from numeric.checks import check_mixed_args as check_args
from numeric.extraction import ShiftPlan
from numeric.ranges import group_bounds

from .grouped_product import grouped_product
from .shift_tables import activation_shifts, weight_elem_shifts, weight_group_shifts
from .tensor_io import as_int64, finish, pick_device


def leading_groups(n4: int, k: int, group_size: int, device) -> torch.Tensor:
    """Group index of each of ``k`` channels: ``c // group_size`` below ``n4``, else -1."""
    c = torch.arange(k, dtype=torch.int64, device=device)
    return torch.where(c < n4, c // group_size, torch.full_like(c, -1))


def _channel_ranges(x3, x_range, dynamic):
    """Per-channel (min, max) tables [R, K]: R = B (dynamic) or 1 (static)."""
    b, r, k = x3.shape
    if dynamic:
        if r == 0:
            return None
        return x3.amin(dim=1), x3.amax(dim=1)
    if x_range is not None:
        return x_range[0:1], x_range[1:2]
    if b * r == 0:
        zero = torch.zeros((1, k), dtype=torch.int64, device=x3.device)
        return zero, zero
    flat = x3.reshape(b * r, k)
    return flat.amin(dim=0, keepdim=True), flat.amax(dim=0, keepdim=True)


def plan_tables(x3, w, n4, *, group_size, x_signed, extraction, x_range, dynamic,
                weight_shift):
    """``(chan_group, e_x [1 or B, G], e_w [N, G] or [N, n4])`` for x3 [B, R, K], w [N, K]."""
    b, _, k = x3.shape
    chan_group = leading_groups(n4, k, group_size, x3.device)
    n_groups = -(-n4 // group_size) if n4 else 0
    ranges = _channel_ranges(x3, x_range, dynamic)
    if ranges is None:  # dynamic with no rows: every shift stays 0, as in quant
        ex = torch.zeros((b, n_groups), dtype=torch.int64, device=x3.device)
    else:
        ex = activation_shifts(ranges[0], ranges[1], chan_group, n_groups, x_signed, extraction)
    if weight_shift == "group":
        ew = weight_group_shifts(w[:, :, None], chan_group, n_groups, extraction)
    else:
        ew = weight_elem_shifts(w[:, :n4], extraction)
    return chan_group, ex, ew


def _linear_core(x3, w, n4, *, group_size, x_signed, extraction, x_range, dynamic,
                 weight_shift, backend):
    b, r, k = x3.shape
    chan_group, ex, ew = plan_tables(x3, w, n4, group_size=group_size, x_signed=x_signed,
                                     extraction=extraction, x_range=x_range,
                                     dynamic=dynamic, weight_shift=weight_shift)
    ex_rows = ex.repeat_interleave(r, dim=0) if dynamic else ex
    ew_cols = ew[:, chan_group[:n4]] if weight_shift == "group" else ew
    acc = grouped_product(x3.reshape(b * r, k), w, chan_group, ex_rows, ew_cols,
                          x_signed=x_signed, backend=backend)
    return acc.reshape(b, r, w.shape[0]), (chan_group, ex, ew)


def _prepare(x, w, x_range, device, ndim, name):
    dev, as_numpy = pick_device(x, w, x_range, device=device)
    xt, wt = as_int64(x, dev), as_int64(w, dev)
    if xt.ndim != ndim or wt.ndim != 2 or xt.shape[-1] != wt.shape[1]:
        shape = "[M, K]" if ndim == 2 else "[B, R, K]"
        raise ValueError(f"{name}: need x {shape} and w [N, K]; got {tuple(xt.shape)} "
                         f"and {tuple(wt.shape)}")
    xr = check_range_table(None if x_range is None else as_int64(x_range, dev), wt.shape[1])
    return xt, wt, xr, as_numpy


def mixed_gemm(x, w, n4, *, group_size=64, x_signed=True, extraction="effective",
               x_range=None, dynamic=False, weight_shift="group", return_plan=False,
               backend="auto", device=None):
    """Exact mixed-precision accumulators ``acc[m, n]`` (int64), equal to ``quant.mixed_gemm``.

    ``x`` [M, K] and ``w`` [N, K] codes in priority order, ``n4`` leading 4-bit channels.
    Returns a torch int64 tensor on the compute device if ``x`` or ``w`` is a tensor, else
    a numpy array. ``return_plan=True`` also returns a ``numeric.ShiftPlan`` (numpy arrays).
    """
    xt, wt, xr, as_numpy = _prepare(x, w, x_range, device, 2, "mixed_gemm")
    check_args(n4, xt.shape[1], group_size, extraction, weight_shift)
    check_codes(xt, wt, x_signed)
    x3 = xt[:, None, :] if dynamic else xt[None, :, :]
    acc, (_, ex, ew) = _linear_core(x3, wt, n4, group_size=group_size, x_signed=x_signed,
                                    extraction=extraction, x_range=xr, dynamic=dynamic,
                                    weight_shift=weight_shift, backend=backend)
    acc = finish(acc[:, 0, :] if dynamic else acc[0], as_numpy)
    if not return_plan:
        return acc
    bounds = group_bounds(n4, xt.shape[1], group_size)
    x_shift = ex.cpu().numpy() if dynamic else ex[0].cpu().numpy()
    return acc, ShiftPlan(bounds, np.asarray(x_shift), ew.cpu().numpy(), weight_shift)


def mixed_linear(x3, w, n4, *, group_size=64, x_signed=True, extraction="effective",
                 x_range=None, dynamic=False, weight_shift="group", backend="auto",
                 device=None):
    """Mixed GEMM over samples: ``x3`` [B, R, K] -> [B, R, N]; dynamic ranges per sample."""
    xt, wt, xr, as_numpy = _prepare(x3, w, x_range, device, 3, "mixed_linear")
    check_args(n4, wt.shape[1], group_size, extraction, weight_shift)
    check_codes(xt, wt, x_signed)
    acc, _ = _linear_core(xt, wt, n4, group_size=group_size, x_signed=x_signed,
                          extraction=extraction, x_range=xr, dynamic=dynamic,
                          weight_shift=weight_shift, backend=backend)
    return finish(acc, as_numpy)


