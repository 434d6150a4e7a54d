"""Shift tables of the numeric contract (docs/numeric_contract.md) computed in torch: activation shifts per group, weight shifts.

Channels are assigned to 4-bit groups by ``chan_group`` ([C] int64, ``-1`` for 8-bit
channels). Ranges are reduced per group with ``scatter_reduce`` so nothing loops over
groups in Python.
"""

from __future__ import annotations

import torch

from .int_ops import shift_for_range

_BIG = 2**62


def group_ranges(lo_c: torch.Tensor, hi_c: torch.Tensor, chan_group: torch.Tensor,
                 n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row group min and max from per-channel tables ``lo_c``/``hi_c`` [R, C]."""
    rows = lo_c.shape[0]
    sel = chan_group >= 0
    idx = chan_group[sel].unsqueeze(0).expand(rows, -1)
    dev = lo_c.device
    glo = torch.full((rows, n_groups), _BIG, dtype=torch.int64, device=dev)
    ghi = torch.full((rows, n_groups), -_BIG, dtype=torch.int64, device=dev)
    glo = glo.scatter_reduce(1, idx, lo_c[:, sel], reduce="amin")
    ghi = ghi.scatter_reduce(1, idx, hi_c[:, sel], reduce="amax")
    return glo, ghi


def activation_shifts(lo_c, hi_c, chan_group, n_groups, x_signed, extraction):
    """``e_x`` [R, n_groups] from per-channel code ranges [R, C] (R = 1 static, B dynamic)."""
    glo, ghi = group_ranges(lo_c, hi_c, chan_group, n_groups)
    return shift_for_range(glo, ghi, x_signed, extraction)


def weight_group_shifts(w_nc: torch.Tensor, chan_group: torch.Tensor, n_groups: int,
                        extraction: str) -> torch.Tensor:
    """``e_w`` [N, n_groups] from weights ``w_nc`` [N, C, P] (P kernel positions, 1 for GEMMs)."""
    glo, ghi = group_ranges(w_nc.amin(dim=2), w_nc.amax(dim=2), chan_group, n_groups)
    return shift_for_range(glo, ghi, True, extraction)


def weight_elem_shifts(w: torch.Tensor, extraction: str) -> torch.Tensor:
    """Per-weight shift (``weight_shift="weight"``): each code's own range [min(w,0), max(w,0)]."""
    zero = torch.zeros((), dtype=torch.int64, device=w.device)
    return shift_for_range(torch.minimum(w, zero), torch.maximum(w, zero), True, extraction)
