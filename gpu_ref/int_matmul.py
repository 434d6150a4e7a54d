"""Exact integer products ``a @ b.T`` (int64 result) with three interchangeable backends.

``a`` [M, K] and ``b`` [N, K] hold integer values (any integer or float dtype).

* ``"int8"``: ``torch._int_mm`` (int8 x int8 -> int32; Tensor Cores on CUDA). ``b`` must
  fit int8. ``a`` must fit int8, or (``a_offset=128``) lie in [0, 255]: then
  ``a @ b.T = (a - 128) @ b.T + 128 * rowsum(b)`` with ``a - 128`` in [-128, 127]; the
  identity is exact integer algebra, and ``rowsum(b)`` is computed in int64. CUDA's shape
  rules (M > 16, K and N multiples of 8) are met by zero padding, which adds only zero
  terms; K is cut into chunks of at most ``INT8_K_CHUNK`` so that an int32 partial sum,
  bounded by ``K_chunk * 128 * 128 = 2**30``, cannot overflow. Chunks add in int64.
* ``"float64"``: float64 matmul of the integer values, then rounding. Exact while every
  partial sum stays below 2**53: with |a| <= 255 and |b| <= 128 that holds for K < 2**38;
  :func:`int_matmul` checks the bound from the actual maxima and otherwise splits K.
* ``"int64"``: int64 matmul (CPU only: CUDA has no integer ``mm``).

``"auto"`` picks ``"int8"`` on CUDA and ``"float64"`` elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "int8", "float64", "int64")
INT8_K_CHUNK = 65536
_F64_EXACT = 2**53


def resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "int8" if device.type == "cuda" else "float64"
    if backend == "int64" and device.type == "cuda":
        raise ValueError("backend='int64' needs a CPU tensor: CUDA has no int64 matmul")
    return backend


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def int8_matmul(a: torch.Tensor, b: torch.Tensor, a_offset: int = 0) -> torch.Tensor:
    """``a @ b.T`` via ``torch._int_mm``; ``a - a_offset`` and ``b`` must fit int8."""
    m, k = a.shape
    n = b.shape[0]
    out = torch.zeros((m, n), dtype=torch.int64, device=a.device)
    if m == 0 or n == 0 or k == 0:
        return out
    a8 = (a.to(torch.int64) - a_offset).to(torch.int8)
    b8 = b.to(torch.int8)
    mp, np_ = max(m, 17), _round_up(n, 8)
    for k0 in range(0, k, INT8_K_CHUNK):
        k1 = min(k0 + INT8_K_CHUNK, k)
        kp = _round_up(k1 - k0, 8)
        # zero padding: extra rows/columns are dropped, extra K terms are 0 * 0
        ac = F.pad(a8[:, k0:k1], (0, kp - (k1 - k0), 0, mp - m))
        bc = F.pad(b8[:, k0:k1], (0, kp - (k1 - k0), 0, np_ - n))
        out += torch._int_mm(ac.contiguous(), bc.contiguous().t())[:m, :n].to(torch.int64)
    if a_offset:
        out += a_offset * b.to(torch.int64).sum(dim=1)[None, :]
    return out


def float64_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` in float64, split along K so every partial sum stays below 2**53."""
    m, k = a.shape
    n = b.shape[0]
    out = torch.zeros((m, n), dtype=torch.int64, device=a.device)
    if m == 0 or n == 0 or k == 0:
        return out
    amax = int(a.abs().max())
    bmax = int(b.abs().max())
    per_term = max(amax * bmax, 1)
    chunk = max(1, min(k, (_F64_EXACT - 1) // per_term))
    for k0 in range(0, k, chunk):
        k1 = min(k0 + chunk, k)
        part = a[:, k0:k1].to(torch.float64) @ b[:, k0:k1].to(torch.float64).T
        out += torch.round(part).to(torch.int64)
    return out


def int_matmul(a: torch.Tensor, b: torch.Tensor, *, backend: str = "auto",
               a_offset: int = 0) -> torch.Tensor:
    """Exact ``a @ b.T`` as int64. ``a_offset`` is a hint for ``"int8"`` (see module doc)."""
    backend = resolve_backend(backend, a.device)
    if backend == "int8":
        return int8_matmul(a, b, a_offset)
    if backend == "float64":
        return float64_matmul(a, b)
    return a.to(torch.int64) @ b.to(torch.int64).T
