"""Channel priority and nested 4-bit sets (docs/numeric_contract.md, "Channel priority", "Nested ratios").

The default priority ranks a layer's input channels by the estimated error of lowering
them to 4 bits: activation rounding noise times the channel's weight energy plus weight
rounding noise times the channel's activation energy, summed over output channels (a key
taken as a max over output channels would rank nothing). Lowest error first.
"""

from __future__ import annotations

import numpy as np

from numeric.extraction import shift_for_range
from numeric.ratio import max4_for_ratio  # noqa: F401  (the one ratio rule, re-exported)


def _noise(e):
    """Variance of rounding by 2**e (0 when the group fits exactly)."""
    e = np.asarray(e, dtype=np.float64)
    return np.where(e > 0, 4.0**e / 12.0, 0.0)


def lowering_error(w_codes, x_lo, x_hi, x_mean_sq, x_signed, extraction="effective"):
    """Estimated squared error of lowering each input channel alone, in code units.

    ``w_codes`` [N, C, ...] (conv kernels flattened over the trailing axes), ``x_lo``/``x_hi``
    per-channel code ranges, ``x_mean_sq`` per-channel mean squared code.
    """
    w = np.asarray(w_codes, dtype=np.int64)
    w = w.reshape(w.shape[0], w.shape[1], -1)  # [N, C, taps]
    ex = shift_for_range(np.asarray(x_lo), np.asarray(x_hi), x_signed, extraction)  # [C]
    ew = shift_for_range(w.min(axis=2), w.max(axis=2), True, extraction)  # [N, C]
    w_energy = (w.astype(np.float64) ** 2).sum(axis=(0, 2))  # [C]
    act_term = _noise(ex) * w_energy
    wt_term = (_noise(ew) * w.shape[2]).sum(axis=0) * np.asarray(x_mean_sq, dtype=np.float64)
    return act_term + wt_term


def priority_order(error) -> np.ndarray:
    """Channel order, lowest estimated error first (stable on ties)."""
    return np.argsort(np.asarray(error, dtype=np.float64), kind="stable").astype(np.int64)


def nested_sets(order, counts):
    """The 4-bit channel sets for increasing counts: prefixes of one order, so nested."""
    order = np.asarray(order)
    return [set(order[:c].tolist()) for c in sorted(counts)]
