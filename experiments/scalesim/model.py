"""Per-layer counts of a weight-stationary array, in SCALE-Sim's report terms.

A layer is a GEMM with ``T`` output pixels, a ``K``-long window and ``N`` filters. It is cut
into ``F = ceil(K/R) * ceil(N/C)`` folds; with SCALE-Sim's timing (``npu_sim.folds``,
``scalesim=True``: the array drains before the next fold's weights load) each fold takes
``P = 2R + C + T - 2`` cycles and the layer ``F * P``. SCALE-Sim's ``Total Cycles`` is the
0-based index of the cycle of the last output write, ``F * P - 1``; the report reproduces
that value. Everything else follows from the fold shapes:

* mapping efficiency: mean over folds of ``used rows * used cols / (R * C)``;
* compute utilization: mean over folds of ``used PEs * T / (R * C * (2R + 2C + T - 3))``;
* overall utilization: ``T * K * N / (total cycles * R * C)``;
* SRAM reads/writes: IFMAP ``ceil(N/C) * T * K``, filter ``K * N``, OFMAP ``ceil(K/R) * T * N``,
  their first and last cycles from the fold layout (IFMAP and filter reads are served one
  cycle after their demand, as in SCALE-Sim's buffers; the IFMAP's last read skips window
  elements past the IFMAP edge, which SCALE-Sim's rounded-up output size creates).

DRAM traffic depends on SCALE-Sim's buffer model and is not reproduced (those report
fields are left empty). See docs/scalesim.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu_sim.folds import fold_cycles

from .config import ScaleSimConfig
from .topology import Layer


@dataclass(frozen=True)
class LayerReport:
    """One layer's row of the three reports (cycles count from 0, as in SCALE-Sim)."""

    total_cycles: int
    stall_cycles: int
    overall_util: float
    mapping_eff: float
    compute_util: float
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    ifmap_sram_start: int
    ifmap_sram_stop: int
    filter_sram_start: int
    filter_sram_stop: int
    ofmap_sram_start: int
    ofmap_sram_stop: int

    @property
    def avg_ifmap_sram_bw(self) -> float:
        return self.ifmap_sram_reads / self.total_cycles

    @property
    def avg_filter_sram_bw(self) -> float:
        return self.filter_sram_reads / self.total_cycles

    @property
    def avg_ofmap_sram_bw(self) -> float:
        return self.ofmap_sram_writes / self.total_cycles


def _last_ifmap_demand(layer: Layer, k0: int) -> int:
    """Largest ``t + j`` over the IFMAP elements inside the IFMAP, for window columns
    ``k0 + j`` of the last K fold. SCALE-Sim rounds the output size up, so a last window can
    reach past the IFMAP edge; those elements are not read (its operand holds -1 there)."""
    eh, ew = layer.ofmap_h, layer.ofmap_w
    if (layer.ifmap_h - layer.filt_h) % layer.stride_h == 0 \
            and (layer.ifmap_w - layer.filt_w) % layer.stride_w == 0:
        return eh * ew - 1 + layer.gemm_k - 1 - k0  # every window inside the IFMAP
    col = np.arange(k0, layer.gemm_k)
    per_row = layer.filt_w * layer.channels
    c_row, c_col = col // per_row, col % per_row // layer.channels
    t = (np.minimum(eh - 1, (layer.ifmap_h - 1 - c_row) // layer.stride_h) * ew
         + np.minimum(ew - 1, (layer.ifmap_w - 1 - c_col) // layer.stride_w))
    return int((t + col - k0).max())


def layer_report(layer: Layer, R: int, C: int) -> LayerReport:
    """Report values of one layer on an ``R x C`` weight-stationary array."""
    T, K, N = layer.gemm_m, layer.gemm_k, layer.gemm_n
    kf, nf = -(-K // R), -(-N // C)
    F = kf * nf
    P = 2 * R + C + T - 2
    cycles = fold_cycles(F, T, R, C, scalesim=True)  # F * P
    total = cycles - 1
    n_last = N - (nf - 1) * C
    pes = R * C
    mapping = K * N / (F * pes)
    compute = K * N * T / (F * pes * (2 * R + 2 * C + T - 3))
    last = (F - 1) * P
    return LayerReport(
        total_cycles=total,
        stall_cycles=0,
        overall_util=(T * N * K * 100) / (total * pes),
        mapping_eff=mapping * 100,
        compute_util=compute * 100,
        ifmap_sram_reads=nf * T * K,
        filter_sram_reads=K * N,
        ofmap_sram_writes=kf * T * N,
        ifmap_sram_start=R + 1,
        ifmap_sram_stop=last + R + 1 + _last_ifmap_demand(layer, (kf - 1) * R),
        filter_sram_start=R - min(R, K) + 1,
        filter_sram_stop=last + R,
        ofmap_sram_start=2 * R - 1,
        ofmap_sram_stop=last + 2 * R + T + n_last - 3,
    )


def simulate(config: ScaleSimConfig, layers) -> list[LayerReport]:
    """Reports of every layer of a topology under ``config`` (weight stationary)."""
    R, C = config.array_rows, config.array_cols
    return [layer_report(ly, R, C) for ly in layers]
