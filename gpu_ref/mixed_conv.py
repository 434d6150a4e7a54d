"""``gpu_ref.mixed_conv2d``: the mixed 4/8-bit dense conv of docs/numeric_contract.md in torch ops.

The conv is lowered to a GEMM by im2col (``F.unfold``, columns ordered ``(c, kh, kw)``,
values exact in float64), so a 4-bit group — a set of feature channels in priority order,
over every kernel position — is the set of columns of its channels. Shifts are computed
from ``x`` itself (not from the patches, whose padding and stride would change the ranges):
one activation shift per group (per image when dynamic), one weight shift per
(output channel, group) or per weight. Equal to ``quant.mixed_conv2d``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from numeric.checks import check_codes, check_order, pair
from numeric.checks import check_mixed_args as check_args

from .grouped_product import grouped_product
from .shift_tables import activation_shifts, weight_elem_shifts, weight_group_shifts
from .tensor_io import as_int64, finish, pick_device


def conv_out_size(h, w, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    return ((h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


def priority_groups(order: torch.Tensor, n4: int, group_size: int) -> torch.Tensor:
    """Group of each channel (original numbering): slices of ``order[:n4]``, else -1."""
    chan_group = torch.full((order.numel(),), -1, dtype=torch.int64, device=order.device)
    rank = torch.arange(n4, dtype=torch.int64, device=order.device)
    chan_group[order[:n4]] = rank // group_size
    return chan_group


def mixed_conv2d(x, w, n4, *, order=None, group_size=64, x_signed=True,
                 extraction="effective", x_range=None, dynamic=False, weight_shift="group",
                 stride=1, padding=0, dilation=1, backend="auto", device=None):
    """Exact int64 accumulators [B, O, Ho, Wo] of a dense conv with ``n4`` 4-bit channels.

    Arguments as ``quant.mixed_conv2d``; ``backend``/``device`` as ``gpu_ref.mixed_gemm``.
    """
    dev, as_numpy = pick_device(x, w, order, x_range, device=device)
    xt, wt = as_int64(x, dev), as_int64(w, dev)
    if xt.ndim != 4 or wt.ndim != 4 or xt.shape[1] != wt.shape[1]:
        raise ValueError(f"mixed_conv2d: need x [B, C, H, W] and w [O, C, kh, kw] with equal C; "
                         f"got {tuple(xt.shape)} and {tuple(wt.shape)}")
    b, c, h, wd = xt.shape
    o, _, kh, kw = wt.shape
    check_args(n4, c, group_size, extraction, weight_shift)
    check_codes(xt, wt, x_signed)
    order_t = torch.arange(c, device=dev) if order is None else as_int64(order, dev).flatten()
    check_order(order_t.tolist(), c)
    chan_group = priority_groups(order_t, n4, group_size)
    n_groups = -(-n4 // group_size) if n4 else 0

    # shift tables from x and w in their own layout
    if dynamic:
        lo_c, hi_c = xt.amin(dim=(2, 3)), xt.amax(dim=(2, 3))
    elif x_range is not None:
        xr = as_int64(x_range, dev)
        lo_c, hi_c = xr[0:1], xr[1:2]
    else:
        lo_c = xt.amin(dim=(0, 2, 3))[None] if xt.numel() else torch.zeros((1, c), dtype=torch.int64, device=dev)
        hi_c = xt.amax(dim=(0, 2, 3))[None] if xt.numel() else lo_c
    ex = activation_shifts(lo_c, hi_c, chan_group, n_groups, x_signed, extraction)
    col_group = chan_group.repeat_interleave(kh * kw)  # column = c * kh * kw + position
    w2 = wt.reshape(o, c * kh * kw)
    cols4 = col_group >= 0
    if weight_shift == "group":
        ew = weight_group_shifts(wt.reshape(o, c, kh * kw), chan_group, n_groups, extraction)
        ew_cols = ew[:, col_group[cols4]]
    else:
        ew_cols = weight_elem_shifts(w2, extraction)[:, cols4]

    kernel, st, pd, dl = (kh, kw), pair(stride), pair(padding), pair(dilation)
    ho, wo = conv_out_size(h, wd, kernel, st, pd, dl)
    cols = F.unfold(xt.to(torch.float64), kernel, dilation=dl, padding=pd, stride=st)
    x2 = cols.transpose(1, 2).reshape(b * ho * wo, c * kh * kw).round().to(torch.int64)
    ex_rows = ex.repeat_interleave(ho * wo, dim=0) if dynamic else ex
    acc = grouped_product(x2, w2, col_group, ex_rows, ew_cols, x_signed=x_signed,
                          backend=backend)
    acc = acc.reshape(b, ho, wo, o).permute(0, 3, 1, 2).contiguous()
    return finish(acc, as_numpy)
