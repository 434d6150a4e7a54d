"""Host side of the Triton mixed GEMM: packing, shift tables, launch.

Usable without Triton or CUDA for everything but :func:`launch` (packing and tables are
torch ops), so the plumbing is testable on a CPU. Typical use::

    packed = pack_weights(w, group_size=64)                 # once per layer
    ex = activation_shift_table(x_range=xr, k=K, group_size=64, x_signed=True)
    max4 = torch.tensor([n4], dtype=torch.int32, device="cuda")
    y = launch(x_int8, packed, max4, ex, x_signed=True)     # int32 [M, N]
    max4.fill_(other_n4)                                    # ratio switch: no recompile

Tables cover every block of ``group_size`` columns of K, so any ``max4`` the contract allows
(a multiple of the group size, or K) reuses them: the blocks below ``max4`` are exactly
``quant.mixed_gemm``'s 4-bit groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .int_ops import lower4
from .shift_tables import activation_shifts, weight_elem_shifts, weight_group_shifts
from .tensor_io import as_int64

KERNEL_GROUP_SIZES = (16, 32, 64, 128)


@dataclass
class PackedWeights:
    """Weights of one layer for the kernel, K-major ([K, N]) so loads coalesce along N.

    ``w8``: 8-bit codes; ``w4``: 4-bit codes of every column with its block's shift (for
    ``weight_shift="weight"``: ``w4 << e_w`` per weight, which fits int8, and ``ew`` = 0);
    ``ew``: [N, n_blocks] int32 weight shifts.
    """

    w8: torch.Tensor
    w4: torch.Tensor
    ew: torch.Tensor
    group_size: int


def block_groups(k: int, group_size: int, device) -> torch.Tensor:
    return torch.arange(k, dtype=torch.int64, device=device) // group_size


def pack_weights(w, *, group_size=64, extraction="effective", weight_shift="group",
                 device=None) -> PackedWeights:
    if group_size not in KERNEL_GROUP_SIZES:
        raise ValueError(f"kernel group_size must be one of {KERNEL_GROUP_SIZES}, got {group_size}")
    dev = torch.device(device) if device is not None else (
        w.device if isinstance(w, torch.Tensor) else torch.device("cpu"))
    wt = as_int64(w, dev)
    n, k = wt.shape
    groups = block_groups(k, group_size, dev)
    nb = -(-k // group_size)
    if weight_shift == "group":
        ew = weight_group_shifts(wt[:, :, None], groups, nb, extraction)
        w4 = lower4(wt, ew[:, groups], True)
    elif weight_shift == "weight":
        ewk = weight_elem_shifts(wt, extraction)
        w4 = torch.bitwise_left_shift(lower4(wt, ewk, True), ewk)
        ew = torch.zeros((n, nb), dtype=torch.int64, device=dev)
    else:
        raise ValueError(f"weight_shift must be 'group' or 'weight', got {weight_shift!r}")
    return PackedWeights(wt.t().contiguous().to(torch.int8), w4.t().contiguous().to(torch.int8),
                         ew.to(torch.int32).contiguous(), group_size)


def activation_shift_table(x=None, *, x_range=None, k=None, group_size=64, x_signed=True,
                           extraction="effective", dynamic=False, device=None) -> torch.Tensor:
    """``e_x`` as int32 [1, n_blocks] (static) or [M, n_blocks] (dynamic, one row per row of x).

    Static: from ``x_range`` [2, K] or, when None, from the range of ``x`` (as quant does).
    """
    if x is not None:
        dev = torch.device(device) if device is not None else (
            x.device if isinstance(x, torch.Tensor) else torch.device("cpu"))
        xt = as_int64(x, dev)
        k = xt.shape[1]
    else:
        dev = torch.device(device or "cpu")
        xt = None
        if k is None:
            k = len(x_range[0])
    groups = block_groups(k, group_size, dev)
    nb = -(-k // group_size)
    if dynamic:  # per row: each code is its own channel range
        lo_c, hi_c = xt, xt
    elif x_range is not None:
        xr = as_int64(x_range, dev)
        lo_c, hi_c = xr[0:1], xr[1:2]
    elif xt.shape[0] == 0:
        lo_c = hi_c = torch.zeros((1, k), dtype=torch.int64, device=dev)
    else:
        lo_c, hi_c = xt.amin(dim=0, keepdim=True), xt.amax(dim=0, keepdim=True)
    ex = activation_shifts(lo_c, hi_c, groups, nb, x_signed, extraction)
    return ex.to(torch.int32).contiguous()


def launch(x: torch.Tensor, packed: PackedWeights, max4: torch.Tensor, ex: torch.Tensor, *,
           x_signed: bool, out: torch.Tensor | None = None, block_m: int = 64,
           block_n: int = 64, num_warps: int = 4) -> torch.Tensor:
    """Run the kernel: ``x`` int8 (signed) or uint8 (unsigned) [M, K] on CUDA -> int32 [M, N].

    ``max4`` is a 1-element int32 CUDA tensor; ``ex`` from :func:`activation_shift_table`.
    """
    if not x.is_cuda:
        raise RuntimeError("gpu_ref.triton_mixed.launch needs CUDA tensors")
    want = torch.int8 if x_signed else torch.uint8
    if x.dtype != want:
        raise TypeError(f"x must be {want} for x_signed={x_signed}, got {x.dtype}")
    import triton

    from .triton_kernel import mixed_gemm_kernel

    m, k = x.shape
    n = packed.w8.shape[1]
    if packed.w8.shape[0] != k:
        raise ValueError(f"x has K={k} but the packed weights have K={packed.w8.shape[0]}")
    if out is None:
        out = torch.empty((m, n), dtype=torch.int32, device=x.device)
    lo4, hi4 = (-8, 7) if x_signed else (0, 15)
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n))
    mixed_gemm_kernel[grid](
        x, packed.w8, packed.w4, ex, packed.ew, max4, out,
        m, n, k,
        x.stride(0), x.stride(1), packed.w8.stride(0), packed.w8.stride(1),
        0 if ex.shape[0] == 1 else ex.stride(0), ex.stride(1),
        packed.ew.stride(0), packed.ew.stride(1),
        out.stride(0), out.stride(1),
        X_UNSIGNED=not x_signed, LO4=lo4, HI4=hi4, G=packed.group_size,
        BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps)
    return out


def emulate(x, packed: PackedWeights, max4: int, ex: torch.Tensor, *, x_signed: bool):
    """The kernel's arithmetic in torch ops (any device), block by block, int32 accumulation.

    Lets the CPU test the packing, tables, unsigned offset and block logic the kernel uses.
    """
    xt = as_int64(x, packed.w8.device)
    m, k = xt.shape
    g = packed.group_size
    w8, w4 = packed.w8.to(torch.int64), packed.w4.to(torch.int64)
    ew = packed.ew.to(torch.int64)
    acc = torch.zeros((m, w8.shape[1]), dtype=torch.int32, device=xt.device)
    wsum = torch.zeros((w8.shape[1],), dtype=torch.int32, device=xt.device)
    for kb in range(-(-k // g)):
        a, z = kb * g, min(kb * g + g, k)
        xb = xt[:, a:z]
        if a < max4:
            e = ex[:, kb:kb + 1].to(torch.int64)
            part = lower4(xb, e, x_signed) @ w4[a:z]
            acc += torch.bitwise_left_shift(part, e + ew[None, :, kb]).to(torch.int32)
        elif x_signed:
            acc += (xb @ w8[a:z]).to(torch.int32)
        else:
            acc += ((xb - 128) @ w8[a:z]).to(torch.int32)
            wsum += w8[a:z].sum(dim=0).to(torch.int32)
    return acc + 128 * wsum[None, :]
