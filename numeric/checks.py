"""Argument checks every mixed GEMM/conv entry point shares, and conv parameter pairs.

The quant reference, the NPU simulator and the GPU path each check the same things
(group size, extraction, weight-shift granularity, ``n4``, 8-bit code ranges); they differ
only in the error class they raise, which each caller passes in (``ValueError`` for the
library functions, ``ConfigError``/``SimError`` for the simulator).
"""

from __future__ import annotations

import numpy as np

from .extraction import EXTRACTIONS, WEIGHT_SHIFTS
from .ranges import code_range


def check_mixed_args(n4, k, group_size, extraction, weight_shift, *, error=ValueError,
                     n4_error=None) -> None:
    """Validate the keyword arguments of a mixed GEMM/conv with ``k`` feature channels.

    ``error`` is raised for a bad setting; ``n4_error`` (default ``error``) for an ``n4``
    that is out of range or not whole groups.
    """
    n4_error = n4_error or error
    if extraction not in EXTRACTIONS:
        raise error(f"extraction must be one of {EXTRACTIONS}, got {extraction!r}")
    if weight_shift not in WEIGHT_SHIFTS:
        raise error(f"weight_shift must be one of {WEIGHT_SHIFTS}, got {weight_shift!r}")
    if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) \
            or group_size <= 0:
        raise error(f"group_size must be a positive integer, got {group_size!r}")
    if not 0 <= n4 <= k:
        raise n4_error(f"n4={n4} must lie in [0, K={k}] (the number of feature channels)")
    if n4 % group_size and n4 != k:
        raise n4_error(f"n4={n4} must be a multiple of group_size={group_size} (or equal K={k})")


def _extent(a):
    """(min, max) of a numpy array or torch tensor as ints; None when it is empty."""
    n = a.numel() if hasattr(a, "numel") else np.size(a)
    return None if n == 0 else (int(a.min()), int(a.max()))


def check_codes(x, w, x_signed: bool, *, error=ValueError, where: str = "") -> None:
    """Activation codes in the 8-bit (signed or unsigned) range, weight codes in [-128, 127].

    ``x``/``w`` are numpy arrays or torch tensors; ``where`` prefixes the message.
    """
    pre = f"{where}: " if where else ""
    lo, hi = code_range(x_signed)
    ext = _extent(x)
    if ext and (ext[0] < lo or ext[1] > hi):
        kind = "signed" if x_signed else "unsigned"
        raise error(f"{pre}activation codes outside the {kind} 8-bit range [{lo}, {hi}]")
    ext = _extent(w)
    if ext and (ext[0] < -128 or ext[1] > 127):
        raise error(f"{pre}weight codes outside the 8-bit range [-128, 127]")


def pair(v, name: str = "value", *, error=ValueError) -> tuple:
    """A conv parameter (stride, padding, dilation, kernel) as a pair: one value is used
    for both dimensions, a tuple or list must hold exactly two."""
    if isinstance(v, (tuple, list, np.ndarray)):
        if len(v) != 2:
            raise error(f"{name} must be an int or a pair, got {v!r}")
        return tuple(v)
    return v, v


def int_pair(v, name: str = "value", *, error=ValueError) -> tuple[int, int]:
    """``pair`` of two integers (anything else raises ``error`` naming the parameter)."""
    a, b = pair(v, name, error=error)
    if not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in (a, b)):
        raise error(f"{name} must be an int or a pair, got {v!r}")
    return int(a), int(b)


def check_range_table(x_range, k: int, *, error=ValueError, where: str = "", dim: str = "K"):
    """A per-channel ``[2, k]`` (min, max) code table as int64, or None when not given."""
    if x_range is None:
        return None
    shape = tuple(x_range.shape) if hasattr(x_range, "shape") else np.shape(x_range)
    if shape != (2, k):
        pre = f"{where}: " if where else ""
        raise error(f"{pre}x_range must be [2, {dim}={k}], got {shape}")
    return x_range if hasattr(x_range, "numel") else np.asarray(x_range, dtype=np.int64)


def check_order(order, c: int, *, error=ValueError, where: str = "") -> None:
    """``order`` (a sequence of channel indices) must be a permutation of ``range(c)``."""
    if sorted(int(i) for i in order) != list(range(c)):
        pre = f"{where}: " if where else ""
        raise error(f"{pre}order must be a permutation of the {c} input channels")
