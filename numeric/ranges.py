"""Code ranges and channel groups: the integer formats and how 4-bit groups are cut.

* ``code_range``: the smallest and largest code of a signed or unsigned format;
* ``INT32_MIN`` / ``INT32_MAX``: the accumulator range;
* ``group_bounds``: the ``(start, stop)`` spans of the 4-bit groups among the leading
  ``n4`` channels (in priority order), one list for every path that cuts groups.
"""

from __future__ import annotations

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def code_range(signed: bool, bits: int = 8) -> tuple[int, int]:
    """Code range of a ``bits``-bit signed or unsigned format."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def group_bounds(n4: int, k: int, group_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the 4-bit groups among the first ``n4`` of ``k`` channels."""
    return [(g, min(g + group_size, n4, k)) for g in range(0, min(n4, k), group_size)]
