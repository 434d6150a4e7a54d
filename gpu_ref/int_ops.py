"""Integer primitives of the numeric contract (docs/numeric_contract.md) written in torch ops, so they run on any device.

* :func:`rshift_rne`: ``v / 2**e`` rounded half to even (``v`` itself for ``e == 0``);
* :func:`lower4`: ``clamp(rshift_rne(v, e), lo4, hi4)``;
* :func:`shift_for_range`: the 4-bit shift of a code range (effective or naive extraction).

Everything works on int64 tensors; shifts broadcast against the values.
"""

from __future__ import annotations

import torch

from numeric.extraction import EXTRACTIONS, WEIGHT_SHIFTS  # noqa: F401
from numeric.ranges import code_range


def rshift_rne(v: torch.Tensor, e) -> torch.Tensor:
    """``v / 2**e`` rounded half to even, for int64 ``v`` and shifts ``e >= 0``.

    With ``q = v >> e`` (floor) and remainder ``r = v - q * 2**e`` in ``[0, 2**e)``, the
    result rounds up when ``r`` exceeds half of ``2**e``, or equals it and ``q`` is odd.
    For ``e == 0`` the "half" is 0 and ``r`` is 0, so nothing rounds.
    """
    v = v.to(torch.int64)
    e = torch.as_tensor(e, dtype=torch.int64, device=v.device)
    if e.numel() and bool((e < 0).any()):
        raise ValueError("rshift_rne: shift must be >= 0")
    q = torch.bitwise_right_shift(v, e)
    r = v - torch.bitwise_left_shift(q, e)
    half = torch.bitwise_right_shift(torch.bitwise_left_shift(torch.ones_like(e), e), 1)
    odd = torch.bitwise_and(q, 1) == 1
    up = (r > half) | ((r == half) & odd & (e > 0))
    return q + up.to(torch.int64)


def lower4(v: torch.Tensor, e, signed: bool) -> torch.Tensor:
    """The 4-bit codes of ``v`` under shift ``e``: [-8, 7] signed, [0, 15] unsigned."""
    lo, hi = code_range(signed, 4)
    return rshift_rne(v, e).clamp_(lo, hi)


def bit_length(v: torch.Tensor) -> torch.Tensor:
    """Number of bits of non-negative int64 values (0 for 0), exact for every int64."""
    v = v.to(torch.int64)
    powers = torch.bitwise_left_shift(
        torch.ones(63, dtype=torch.int64, device=v.device),
        torch.arange(63, dtype=torch.int64, device=v.device))
    return (v.unsqueeze(-1) >= powers).sum(-1)


def bits_for_range(lo, hi, signed: bool) -> torch.Tensor:
    """Smallest width ``b >= 1`` whose signed/unsigned format holds every code in [lo, hi]."""
    lo = torch.as_tensor(lo, dtype=torch.int64)
    hi = torch.as_tensor(hi, dtype=torch.int64, device=lo.device)
    zero = torch.zeros((), dtype=torch.int64, device=lo.device)
    if signed:
        # need 2**(b-1) >= -lo and 2**(b-1) >= hi + 1; ceil(log2(n)) = bit_length(n - 1)
        need = torch.maximum(torch.maximum(-lo, zero), torch.maximum(hi + 1, zero))
        b = 1 + torch.where(need > 1, bit_length(need - 1), zero)
    else:
        if lo.numel() and bool((lo < 0).any()):
            raise ValueError("bits_for_range: unsigned range with negative lower bound")
        b = bit_length(torch.maximum(hi, zero))  # 2**b - 1 >= hi
    return torch.clamp(b, min=1)


def shift_for_range(lo, hi, signed: bool, extraction: str = "effective") -> torch.Tensor:
    """4-bit shift of a group with codes in [lo, hi]: effective ``max(0, bits - 4)``, naive 4."""
    lo = torch.as_tensor(lo, dtype=torch.int64)
    if extraction == "naive":
        return torch.full(lo.shape, 4, dtype=torch.int64, device=lo.device)
    if extraction != "effective":
        raise ValueError(f"extraction must be one of {EXTRACTIONS}, got {extraction!r}")
    return torch.clamp(bits_for_range(lo, hi, signed) - 4, min=0)
