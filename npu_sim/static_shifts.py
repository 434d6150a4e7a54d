"""The static shift tables of a mixed GEMM/conv, derived by the simulator itself.

The compiler writes one activation shift per 4-bit group (from the calibrated code range)
and one weight shift per (output channel, group), or per weight. The simulator derives the
same tables with its own code, from the rule in docs/numeric_contract.md: a group's codes
fit ``bits`` bits, and the shift is ``max(0, bits - 4)`` (naive extraction: 4). ``bits``
is read from the OR of the codes' magnitude patterns, as the hardware's OR-reduce does
(``extract.or_reduce_groups`` / ``shifts_from_masks``): OR-ing the two ends of every
channel's range gives the same bit length as the group's overall range. It does not call
the quant reference's shift planning, so the simulator-versus-quant tests can catch a
wrong shift choice on either side.
"""

from __future__ import annotations

import numpy as np

from .errors import SimError
from .extract import or_reduce_groups, pe_weight_shift, shifts_from_masks


def activation_shifts(codes_or_range, bounds, signed: bool, extraction: str = "effective",
                      where: str = "shift table") -> np.ndarray:
    """Static shift per group ([n_groups] int64).

    ``codes_or_range`` is ``[..., C]`` with channels in priority order: the codes themselves
    (a range taken from the data) or a ``[2, C]`` table of per-channel (min, max) codes.
    """
    v = np.asarray(codes_or_range, dtype=np.int64)
    n4 = bounds[-1][1] if bounds else 0
    if not signed and extraction == "effective" and n4 and v.size \
            and v[..., :n4].min() < 0:
        raise SimError(f"{where}: unsigned activation range with a negative code")
    return shifts_from_masks(or_reduce_groups(v, bounds), signed, extraction)


def weight_shifts(w, bounds, weight_shift: str, extraction: str = "effective") -> np.ndarray:
    """Weight shifts of ``w`` [N, ..., C] (channels last, in priority order).

    ``"group"``: [N, n_groups], one per output channel and group over every kernel
    position; ``"weight"``: [N, ..., n4], each 4-bit weight its own.
    """
    w = np.asarray(w, dtype=np.int64)
    if weight_shift == "weight":
        n4 = bounds[-1][1] if bounds else 0
        return pe_weight_shift(w[..., :n4], extraction)
    return shifts_from_masks(or_reduce_groups(w, bounds, axis_rows=0), True, extraction)
