"""Exact mixed 4/8-bit convolution (dense, groups = 1), the conv form of ``mixed_gemm``.

A conv is a GEMM over ``k = (kh, kw, c)``; a 4-bit group is a set of feature channels
``c`` (taken in priority order) across every kernel position, so one activation shift per
group and one weight shift per (output channel, group), as in docs/numeric_contract.md, "4-bit lowering".
Channels are *not* moved: ``order`` names the priority order, and the first ``n4`` entries
of it are the 4-bit channels. Integer sums use float convolutions that are exact: float32
where no partial sum can reach 2**24, float64 (exact below 2**53) otherwise.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from numeric.checks import check_mixed_args as check_args
from numeric.checks import check_order
from numeric.extraction import lower4, shift_for_range, weight_elem_shifts
from numeric.ranges import group_bounds

F32_EXACT = 2**24  # every integer of magnitude below this is a float32


def exact_conv2d(x, w, stride=1, padding=0, dilation=1, groups=1):
    """Integer convolution, exact: float32 when no partial sum can reach 2**24 (checked
    from the operands' largest magnitudes and the reduction length), else float64."""
    x = np.asarray(x)
    w = np.asarray(w)
    k = int(np.prod(w.shape[1:]))
    bound = (int(np.abs(x).max()) if x.size else 0) * (int(np.abs(w).max()) if w.size else 0) * k
    dt = np.float32 if bound < F32_EXACT else np.float64
    y = F.conv2d(torch.from_numpy(np.ascontiguousarray(x, dtype=dt)),
                 torch.from_numpy(np.ascontiguousarray(w, dtype=dt)),
                 stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.rint(y.numpy()).astype(np.int64)


def _conv(x, w, stride, padding, dilation):
    return exact_conv2d(x, w, stride, padding, dilation)


def conv_groups(order, n4, group_size):
    """Channel index arrays of the 4-bit groups: consecutive slices of ``order[:n4]``."""
    order = np.asarray(order, dtype=np.int64)
    return [order[a:z] for a, z in group_bounds(n4, n4, group_size)]


def conv_shifts(x, w, groups, *, x_signed, extraction, x_range, dynamic, weight_shift):
    """(x_shift, w_shift) for a mixed conv. x_shift: [G] or [B, G]; w_shift: [O, G] or per weight."""
    ng = len(groups)
    if dynamic:
        xs = np.zeros((x.shape[0], ng), dtype=np.int64)
    else:
        xs = np.zeros(ng, dtype=np.int64)
    for g, ch in enumerate(groups):
        if dynamic:
            blk = x[:, ch].reshape(x.shape[0], -1)
            xs[:, g] = shift_for_range(blk.min(axis=1), blk.max(axis=1), x_signed, extraction)
        else:
            if x_range is None:
                lo, hi = int(x[:, ch].min()), int(x[:, ch].max())
            else:
                lo, hi = int(x_range[0, ch].min()), int(x_range[1, ch].max())
            xs[g] = shift_for_range(lo, hi, x_signed, extraction)
    if weight_shift == "group":
        ws = np.zeros((w.shape[0], ng), dtype=np.int64)
        for g, ch in enumerate(groups):
            blk = w[:, ch].reshape(w.shape[0], -1)
            ws[:, g] = shift_for_range(blk.min(axis=1), blk.max(axis=1), True, extraction)
    else:
        ws = weight_elem_shifts(w, extraction)  # [O, C, kh, kw]
    return xs, ws


def mixed_conv2d(x, w, n4, *, order=None, group_size=64, x_signed=True,
                 extraction="effective", x_range=None, dynamic=False, weight_shift="group",
                 stride=1, padding=0, dilation=1):
    """Exact int64 accumulators of a dense conv with ``n4`` 4-bit channels.

    ``x`` [B, C, H, W] codes, ``w`` [O, C, kh, kw] codes, ``order`` a permutation of the C
    channels (priority order; default identity), ``x_range`` [2, C] per-channel min/max
    codes in the *original* channel numbering. Dynamic ranges are per sample (image).
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ValueError(f"mixed_conv2d: need x [B, C, H, W] and w [O, C, kh, kw] with equal C; "
                         f"got {x.shape} and {w.shape}")
    c = x.shape[1]
    check_args(n4, c, group_size, extraction, weight_shift)
    order = np.arange(c) if order is None else np.asarray(order, dtype=np.int64)
    check_order(order, c)
    groups = conv_groups(order, n4, group_size)
    xs, ws = conv_shifts(x, w, groups, x_signed=x_signed, extraction=extraction,
                         x_range=None if x_range is None else np.asarray(x_range),
                         dynamic=dynamic, weight_shift=weight_shift)
    rest = order[n4:]
    acc = None
    if rest.size:
        acc = _conv(x[:, rest], w[:, rest], stride, padding, dilation)
    for g, ch in enumerate(groups):
        ex = xs[:, g].reshape(-1, 1, 1, 1) if dynamic else np.int64(xs[g])
        x4 = lower4(x[:, ch], ex, x_signed)
        if weight_shift == "group":
            ew = ws[:, g]
            w4 = lower4(w[:, ch], ew.reshape(-1, 1, 1, 1), True)
            part = _conv(x4, w4, stride, padding, dilation) << (ex + ew.reshape(1, -1, 1, 1))
        else:
            ewk = ws[:, ch]
            weff = lower4(w[:, ch], ewk, True) << ewk
            part = _conv(x4, weff, stride, padding, dilation) << ex
        acc = part if acc is None else acc + part
    return acc
