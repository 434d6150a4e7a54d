"""What a 4-bit ratio means: the one definition every path uses.

A ratio ``r`` in [0, 1] is the share of a model's eligible 4-bit work run in 4 bits. It
reaches the hardware only as per-layer ``max4`` counts (4-bit channels, whole groups):

* ``check_ratio``: a ratio outside [0, 1] is refused (``RatioError``);
* ``max4_for_ratio``: the uniform per-layer rule, ``floor(r * n_groups) * G`` channels
  (all of them at ``r = 1``), monotone in ``r`` so the sets are nested;
* ``ratio_key`` / ``same_ratio``: ratios are matched to a ladder (a selection's levels,
  a program's max4 tables) by their ``%g`` text / within ``RATIO_TOL``;
* ``within_budget``: a 4-bit share ``used / total`` counts as within ``r`` up to the same
  tolerance;
* ``Max4Source``: what a selection offers the runtime and compiler (per-layer priority
  orders, group sizes, and ``max4_for_ratio(r)`` -> ``{layer: n4}`` or None off its ladder).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from .errors import RatioError

RATIO_TOL = 1e-9


def check_ratio(r, *, error=RatioError) -> float:
    """``r`` as a float, or ``error`` when it lies outside [0, 1]."""
    r = float(r)
    if not 0.0 <= r <= 1.0:
        raise error(f"ratio must lie in [0, 1], got {r}")
    return r


def max4_for_ratio(channels: int, group_size: int, ratio: float) -> int:
    """4-bit channel count at ``ratio``: whole groups, monotone in ratio, all at 1.0."""
    n_groups = math.ceil(channels / group_size)
    k = math.floor(ratio * n_groups + RATIO_TOL)
    return min(channels, k * group_size)


def ratio_key(r) -> str:
    """The text a ratio is stored and looked up under (``0.5`` -> ``"0.5"``)."""
    return f"{float(r):g}"


def same_ratio(a, b) -> bool:
    """Whether two ratios name the same ladder level."""
    return abs(float(a) - float(b)) < RATIO_TOL


def within_budget(used, ratio, total) -> bool:
    """Whether a 4-bit amount ``used`` of ``total`` stays within the share ``ratio``."""
    return used <= float(ratio) * total * (1 + RATIO_TOL)


@runtime_checkable
class Max4Source(Protocol):
    """A selection as the runtime and compiler use it (``quant.select.Selection``, the
    layer-wise baseline): ``orders`` {layer: priority order}, ``ratios`` its ladder,
    ``group_sizes`` {layer: G} it was made with (empty: made without groups), and
    ``max4_for_ratio(r)`` {layer: n4} at a ratio of its ladder, None off it."""

    orders: dict
    ratios: list
    group_sizes: dict

    def max4_for_ratio(self, ratio: float) -> dict | None: ...
