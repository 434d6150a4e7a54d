"""How a GEMM is cut into PE-array folds, and the closed-form cycle count of a fold sequence.

A *fold* is one weight tile held in the array: up to ``R`` K-rows (8-bit fold) or ``2R``
K-rows (4-bit fold: each PE holds two 4-bit weights) by up to ``C`` output channels. A
4-bit fold never mixes two channel groups. K is ordered ``(kernel position, channel)``
with channels innermost (im2col of a channels-last tensor). The 4-bit part is walked as
``(group, kernel position, channel)`` and cut every ``2R`` rows, so with ``G = 2R`` one
fold is one group at one kernel position; the 8-bit part is walked as ``(kernel
position, channel)`` and cut every ``R`` rows.

Fold order on the array: N tiles outer, K folds inner (the accumulators of one N tile
stay in the accumulator memory while all its K folds pass).

Timing of a fold sequence (every fold streams the same ``M`` rows), cycle by cycle as in
``pe_array``: ``ld_i`` = cycle the loader writes row 0 of fold ``i``'s weights (one row a
cycle, ``R`` cycles), ``s_i`` = cycle its first activation enters row 0. A fold streams
only when all its rows are loaded and the previous fold finished injecting:
``s_i = max(ld_i + R, s_{i-1} + M)``. A weight slot can be rewritten row by row once the
fold that used it has left that row: ``ld_i >= s_{i-L} + M + C - 2`` with ``L = 2``
(double buffering) or ``L = 1`` (one slot), and ``ld_i >= ld_{i-1} + R``. The
``scalesim`` mode waits for the whole array to drain (``ld_i = s_{i-1} + M + R + C - 2``),
giving SCALE-Sim's ``2R + C + M - 2`` per fold. The last partial sum leaves the array at
``s_{F-1} + M + R + C - 3``, so the sequence takes ``s_{F-1} + M + R + C - 2`` cycles.
The recurrence is max-plus linear, so ``s_{F-1}`` is a max-plus matrix power: O(log F).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from numeric.ranges import group_bounds

NEG = -(1 << 60)  # max-plus "minus infinity"


@dataclass(frozen=True)
class FoldPlan:
    """The K folds of a GEMM (for one N tile; every N tile repeats them).

    ``cols``: K-column indices (into ``kpos * channels``) in fold order, concatenated;
    ``starts``: fold boundaries into ``cols`` (length ``n_folds + 1``);
    ``bits``: 4 or 8 per fold; ``group``: 4-bit group id per fold (-1 for 8-bit).
    """

    cols: np.ndarray
    starts: np.ndarray
    bits: np.ndarray
    group: np.ndarray

    @property
    def n_folds(self) -> int:
        return len(self.bits)

    @property
    def n_folds4(self) -> int:
        return int(np.count_nonzero(self.bits == 4))

    def fold_cols(self, f: int) -> np.ndarray:
        return self.cols[self.starts[f]:self.starts[f + 1]]


def plan_folds(channels: int, n4: int, *, group_size: int, rows: int, kpos: int = 1) -> FoldPlan:
    """Folds of a GEMM over ``K = kpos * channels`` with ``n4`` leading 4-bit channels."""
    cols, starts, bits, group = [], [0], [], []
    pos = np.arange(kpos, dtype=np.int64)[:, None] * channels

    def cut(seq, width, b, g):
        for a in range(0, len(seq), width):
            part = seq[a:a + width]
            cols.append(part)
            starts.append(starts[-1] + len(part))
            bits.append(b)
            group.append(g)

    for g, (a, z) in enumerate(group_bounds(n4, n4, group_size)):
        cut((pos + np.arange(a, z)[None, :]).ravel(), 2 * rows, 4, g)
    if n4 < channels:
        cut((pos + np.arange(n4, channels)[None, :]).ravel(), rows, 8, -1)
    return FoldPlan(
        cols=np.concatenate(cols) if cols else np.zeros(0, np.int64),
        starts=np.asarray(starts, dtype=np.int64),
        bits=np.asarray(bits, dtype=np.int8),
        group=np.asarray(group, dtype=np.int64),
    )


class FoldCounts(NamedTuple):
    """What the timing and statistics of a fold plan need: ``n_folds``, ``n_folds4``,
    ``rows_used`` (array rows busy, summed over folds: a 4-bit fold packs two K columns
    per row) and ``used4`` (K columns in 4-bit folds)."""

    n_folds: int
    n_folds4: int
    rows_used: int
    used4: int


def plan_counts(plan: FoldPlan) -> FoldCounts:
    """``FoldCounts`` of a built plan."""
    widths = np.diff(plan.starts)
    is4 = plan.bits == 4
    rows_used = int(np.where(is4, -(-widths // 2), widths).sum())
    return FoldCounts(plan.n_folds, plan.n_folds4, rows_used, int(widths[is4].sum()))


@lru_cache(maxsize=65536)
def fold_counts(channels: int, n4: int, *, group_size: int, rows: int,
                kpos: int = 1) -> FoldCounts:
    """``plan_counts(plan_folds(...))`` without building the plan (timing-only runs)."""
    nf = nf4 = used = used4 = 0
    for a, z in group_bounds(n4, n4, group_size):
        k = (z - a) * kpos
        full, rest = divmod(k, 2 * rows)
        nf4 += full + (1 if rest else 0)
        used += full * rows + -(-rest // 2)
        used4 += k
    nf = nf4
    if n4 < channels:
        k = (channels - n4) * kpos
        nf += -(-k // rows)
        used += k
    return FoldCounts(nf, nf4, used, used4)


def count_folds(channels: int, n4: int, *, group_size: int, rows: int, kpos: int = 1) -> int:
    """Number of K folds of ``plan_folds`` without building it."""
    n = 0
    for a, z in group_bounds(n4, n4, group_size):
        n += -(-(z - a) * kpos // (2 * rows))
    if n4 < channels:
        n += -(-(channels - n4) * kpos // rows)
    return n


# --------------------------------------------------------------------------- timing
def _mp_mul(a, b):
    n = len(a)
    return [[max(a[i][k] + b[k][j] for k in range(n)) for j in range(n)] for i in range(n)]


def _mp_pow(a, p):
    n = len(a)
    out = [[0 if i == j else NEG for j in range(n)] for i in range(n)]
    while p:
        if p & 1:
            out = _mp_mul(out, a)
        a = _mp_mul(a, a)
        p >>= 1
    return out


def last_start(F: int, M: int, R: int, C: int, *, double_buffer: bool = True,
               scalesim: bool = False) -> int:
    """Cycle ``s_{F-1}`` at which the last fold starts streaming (closed form)."""
    if F <= 0:
        return 0
    if scalesim:
        return R + (F - 1) * (M + 2 * R + C - 2)
    q = M + C - 2
    if not double_buffer:  # one slot: ld_i = max(ld_{i-1} + R, s_{i-1} + q)
        return R + (F - 1) * (q + R)
    if F == 1:
        return R
    # state v_i = (ld_i, s_i, s_{i-1});  v_1 = (R, max(2R, R + M), R)
    a = [[R, NEG, q], [2 * R, M, q + R], [NEG, 0, NEG]]
    v = [R, max(2 * R, R + M), R]
    p = _mp_pow(a, F - 2)
    return max(p[1][j] + v[j] for j in range(3))


@lru_cache(maxsize=65536)
def fold_cycles(F: int, M: int, R: int, C: int, *, double_buffer: bool = True,
                scalesim: bool = False) -> int:
    """PE-array cycles of ``F`` folds streaming ``M`` rows each (closed form)."""
    if F <= 0 or M <= 0:
        return 0
    return last_start(F, M, R, C, double_buffer=double_buffer, scalesim=scalesim) \
        + M + R + C - 2


def fold_schedule(F: int, M: int, R: int, C: int, *, double_buffer: bool = True,
                  scalesim: bool = False):
    """Reference recurrence (``ld``, ``s``) per fold, step by step (for tests)."""
    ld = [0] * F
    s = [0] * F
    q = M + C - 2
    for i in range(F):
        if i == 0:
            ld[i] = 0
        elif scalesim:
            ld[i] = s[i - 1] + M + R + C - 2
        else:
            lag = 2 if double_buffer else 1
            ld[i] = ld[i - 1] + R
            if i >= lag:
                ld[i] = max(ld[i], s[i - lag] + q)
        s[i] = ld[i] + R if i == 0 else max(ld[i] + R, s[i - 1] + M)
    return ld, s


def scalesim_cycles(K: int, N: int, M: int, R: int, C: int) -> int:
    """SCALE-Sim's weight-stationary compute cycles ``ceil(K/R) ceil(N/C) (2R + C + M - 2)``."""
    return -(-K // R) * -(-N // C) * (2 * R + C + M - 2)
