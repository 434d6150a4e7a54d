"""The mixed 4/8-bit product: 8-bit columns, then 4-bit columns batched by activation shift.

For output ``n`` and a 4-bit group ``g`` the numeric contract (docs/numeric_contract.md) adds
``(sum_{k in g} x4[m, k] * w4[n, k]) << (e_x[g] + e_w[n, g])``. Two exact rewrites make
this a handful of int8 GEMMs:

1. The weight shift is folded into the weight: ``weff = w4 << e_w``. Since
   ``(sum x4 * w4) * 2**e_w == sum x4 * (w4 * 2**e_w)`` for integers, nothing changes. With
   8-bit weight codes ``e_w <= 4`` and ``w4`` in [-8, 7], so ``weff`` lies in [-128, 112]
   and still fits int8 (the same holds per weight for ``weight_shift="weight"``).
2. Columns whose activation shift is the same value ``e`` share one GEMM whose result is
   shifted by ``e`` (a power-of-two factor common to all its terms). Static shifts select
   columns; dynamic (per-row) shifts zero the entries of other shifts instead. The number
   of GEMMs is the number of distinct shifts (at most 5 for 8-bit codes), not of groups.

``x4`` is in [-8, 7] or [0, 15]: int8 either way. The 8-bit columns of unsigned inputs,
[0, 255], use the offset form of :mod:`gpu_ref.int_matmul`.
"""

from __future__ import annotations

import torch

from .int_matmul import int_matmul
from .int_ops import lower4


def grouped_product(x2: torch.Tensor, w2: torch.Tensor, col_group: torch.Tensor,
                    ex_rows: torch.Tensor, ew_cols: torch.Tensor, *, x_signed: bool,
                    backend: str = "auto") -> torch.Tensor:
    """Mixed accumulators [M, N] (int64).

    ``x2`` [M, K] activation codes, ``w2`` [N, K] weight codes, ``col_group`` [K] group of
    each column (``-1``: 8-bit). ``ex_rows`` [1 or M, n_groups] activation shifts (one row
    for static, one per row of ``x2`` for dynamic). ``ew_cols`` [N, K4] weight shift of
    every 4-bit column, in the order of ``col_group >= 0``.
    """
    m, n = x2.shape[0], w2.shape[0]
    acc = torch.zeros((m, n), dtype=torch.int64, device=x2.device)
    is4 = col_group >= 0
    cols8 = torch.nonzero(~is4).flatten()
    cols4 = torch.nonzero(is4).flatten()
    if cols8.numel():
        acc += int_matmul(x2[:, cols8], w2[:, cols8], backend=backend,
                          a_offset=0 if x_signed else 128)
    if cols4.numel() == 0 or m == 0:
        return acc
    weff = torch.bitwise_left_shift(lower4(w2[:, cols4], ew_cols, True), ew_cols)
    ex_cols = ex_rows[:, col_group[cols4]]  # [1 or M, K4]
    x4 = lower4(x2[:, cols4], ex_cols, x_signed)
    for e in torch.unique(ex_cols).tolist():
        if ex_cols.shape[0] == 1:  # static: the columns with this shift
            sel = torch.nonzero(ex_cols[0] == e).flatten()
            part = int_matmul(x4[:, sel], weff[:, sel], backend=backend)
        else:  # dynamic: every column, entries of other shifts zeroed
            part = int_matmul(torch.where(ex_cols == e, x4, 0), weff, backend=backend)
        acc += torch.bitwise_left_shift(part, int(e))
    return acc
