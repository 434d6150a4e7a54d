"""The weight-stationary PE array, stepped every PE every cycle (exact mode).

State of PE ``(r, c)``: two weight slots (double buffering), each holding two 4-bit or
one 8-bit weight (lanes 0 and 1), an activation register (two lanes plus the slot tag
that selects which weight slot this activation meets), and a partial-sum register.
Every cycle, activations move one PE right (row ``r`` is fed at column 0 with the skew
of ``r`` cycles), and partial sums move one PE down:

    P[r, c] <- P[r-1, c] + A0[r, c] * W[slot, 0, r, c] + A1[r, c] * W[slot, 1, r, c]

An 8-bit fold uses lane 0 only; a 4-bit fold feeds two channels per row (two MACs per
PE). Partial sums leave the bottom row into the accumulator memory, where the per-fold
shift-and-add applies ``<< (e_x + e_w[n])`` (overwrite on a tile's first K fold, add
after). The loader writes one weight row per cycle into a free slot; a fold starts
streaming when its slot is fully loaded and the previous fold finished injecting. The
controller only looks at state (per slot, how many activations of its folds have not yet
passed a row — a running count of injected activations read ``r + C - 1`` cycles late for
row ``r`` — and the outstanding outputs), so the cycle count measured here is an
independent check of the closed form in ``folds``.

Register layout (chosen so that the per-cycle update of all R x C PEs is one flat loop
that LLVM vectorizes): every per-PE array is flat and column-major with a pad entry on
top of each column, index ``c * (R + 1) + 1 + r``. The activation registers are not
moved one by one: PE ``(r, c)`` holds what entered row ``r`` at column 0 ``c`` cycles
ago, so the activation inputs live in a time-indexed buffer of column blocks (one block
per cycle, newest lowest) and "every activation moves one PE right" is the buffer's
window moving by one block. The partial sums are double-buffered (new from old), so the
downward move is ``P_new[i] = P_old[i - 1] + MACs``.

Registers hold integers in float32 when every value the PE update can form stays below
2^24 (``4 R max|x| max|w|``, counting the slot differences; true for 8-bit codes on
arrays up to 128 rows), exact in any order of summation, else float64; the accumulators
work in int64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .folds import FoldPlan


@njit(cache=True, nogil=True, boundscheck=False, fastmath=True)
def _pe_step(Pn, Po, Hb, WS, off, n):
    """One cycle of every PE: ``Pn[i] = Po[i - 1] + a0 * w0 + a1 * w1`` over the flat
    column-major index ``i`` (pad entries hold zero activations and weights).

    ``Hb[:, off + i]`` are the activation lanes and slot tag of PE ``i``; the tag picks
    the weight slot: ``w = W_slot0 + tag * (W_slot1 - W_slot0)`` (``WS`` rows 0-3:
    slot-0 lanes 0 and 1, then the two differences). Views keep every index
    non-negative, so the loop compiles to plain vector loads."""
    h0 = Hb[0, off:]
    h1 = Hb[1, off:]
    ht = Hb[2, off:]
    w0 = WS[0]
    w1 = WS[1]
    d0 = WS[2]
    d1 = WS[3]
    for i in range(1, n):
        tg = ht[i]
        Pn[i] = Po[i - 1] + h0[i] * (w0[i] + tg * d0[i]) + h1[i] * (w1[i] + tg * d1[i])


@njit(cache=True, nogil=True, boundscheck=False)
def _run_array(Xf, Wf, xs, ws, M, N, R, C, double_buffer, scalesim, acc, starts,
               Hb, WS, Pa, Pb):
    """Step the array over all folds. Returns the cycle count (or -1 on a stuck controller).

    Xf: the [KF, M, R, 2] activations per K fold, flattened, then 2 R zeros; Wf
    [KF, NT, 2, R, C] weights (both in the register dtype); xs [KF, M] and ws [KF * N]
    (flat) int64 shift tables; acc [M * N] int64 output (flat); starts [F] int64. The remaining
    arguments are the zeroed PE state (``_state``).
    """
    KF = Wf.shape[0]
    NT = Wf.shape[1]
    F = KF * NT
    B = R + 1                 # entries per column (pad + R rows)
    NPE = C * B
    D = Hb.shape[1] // B - C  # blocks the activation window moves before it is re-based
    # The skew buffer: what entered row 0 at each recent cycle (row r sees it r cycles
    # later), with what the rows, the collector and the loader need precomputed.
    # L > R + C - 2, so an entry is read at most L - 1 cycles after it is written, and
    # entries for cycles before 0 read as initialized (a bubble, counts 0).
    L = 1
    while L < R + C + 2:
        L *= 2
    mask = L - 1
    zero_row = Xf.shape[0] - 2 * R      # Xf ends with a row of zeros: what a bubble reads
    ring_x = np.full(L, zero_row, np.int64)  # offset of the activation row in Xf
    ring_tagv = np.zeros(L, Hb.dtype)   # weight slot it meets (0/1) as a register value
    ring_arow = np.zeros(L, np.int64)   # m * N + first output channel of its column tile
    ring_wrow = np.zeros(L, np.int64)   # kf * N + the same channel (the weight shift row)
    ring_ncol = np.zeros(L, np.int64)   # output channels of its column tile (<= C)
    ring_xs = np.zeros(L, np.int64)     # activation shift of (K fold, row)
    ring_keep = np.zeros(L, np.int64)   # 0 on a tile's first K fold (overwrite), else 1
    # activations injected so far for each slot, as of each recent cycle: row r has let
    # through every activation injected up to cycle t - r - (C - 1)
    ring_in = np.zeros((2, L), np.int64)
    injected = np.zeros(2, np.int64)
    BIG = np.int64(1) << 62
    slot_fold = np.full(2, -1, np.int64)
    slot_ready = np.full(2, BIG, np.int64)
    slot_started = np.ones(2, np.bool_)
    owed = np.zeros(2, np.int64)        # activations of the folds started on each slot
    for i in range(F):
        starts[i] = -1
    loading = False
    load_fold = 0
    load_row = 0
    load_slot = 0
    inj_fold = 0
    outstanding = 0
    drained_at = np.int64(-1)
    collected = 0
    total = F * M * C
    limit = np.int64(F) * (M + 2 * R + C + 4) + 16
    blk = D + 1  # block of the current cycle (decremented first thing)
    t = np.int64(0)
    while collected < total:
        if t > limit:
            return -1
        # 1. start streaming the next fold; decide what enters row 0 this cycle
        if inj_fold < F:
            p = (inj_fold & 1) if double_buffer else 0
            if slot_fold[p] == inj_fold and slot_ready[p] <= t and (
                    inj_fold == 0 or t >= starts[inj_fold - 1] + M):
                starts[inj_fold] = t
                owed[p] += M
                slot_started[p] = True
                outstanding += M * C
                inj_fold += 1
        cur = inj_fold - 1
        j0 = t & mask
        if cur >= 0 and t - starts[cur] < M:
            m = t - starts[cur]
            kf = cur % KF
            n0 = (cur // KF) * C
            tag = (cur & 1) if double_buffer else 0
            ring_x[j0] = (kf * M + m) * 2 * R
            ring_tagv[j0] = tag
            ring_arow[j0] = m * N + n0
            ring_wrow[j0] = kf * N + n0
            ring_ncol[j0] = min(C, N - n0)
            ring_xs[j0] = xs[kf, m]
            ring_keep[j0] = 1 if kf else 0
            injected[tag] += 1
        else:
            ring_x[j0] = zero_row
            ring_tagv[j0] = 0
        ring_in[0, j0] = injected[0]
        ring_in[1, j0] = injected[1]
        # 2. activations move one PE right: the window moves one block down. Column c
        # reads block blk + c, i.e. what entered its row c cycles ago. When the window
        # reaches the start of the buffer, its C - 1 live blocks move to the end.
        blk -= 1
        if blk < 0:
            for f3 in range(3):
                for e in range((C - 1) * B):
                    Hb[f3, (D + 1) * B + e] = Hb[f3, e]
            blk = D
        off = blk * B
        # the column-0 inputs of this cycle, row r skewed by r cycles
        for r in range(R):
            e = off + 1 + r
            j = (t - r) & mask
            xo = ring_x[j] + 2 * r
            Hb[0, e] = Xf[xo]
            Hb[1, e] = Xf[xo + 1]
            Hb[2, e] = ring_tagv[j]
        # every PE: MACs, partial sums one row down (new from old)
        if t & 1:
            Pn = Pa
            Po = Pb
        else:
            Pn = Pb
            Po = Pa
        _pe_step(Pn, Po, Hb, WS, off, NPE)
        # 3. collect partial sums leaving the bottom row into the accumulators, with the
        # per-fold shift-and-add; the pad entries on top of each column are cleared
        got = 0
        for c in range(C):
            Pn[c * B] = 0
            j = (t - (R - 1) - c) & mask
            if ring_x[j] != zero_row:  # an activation, not a bubble
                if c < ring_ncol[j]:
                    i = ring_arow[j] + c
                    v = np.int64(Pn[c * B + R]) << (ring_xs[j] + ws[ring_wrow[j] + c])
                    acc[i] = acc[i] * ring_keep[j] + v
                got += 1
        if got:
            collected += got
            outstanding -= got
            if outstanding == 0:
                drained_at = t
        # 4. weight loader: one row per cycle into a free slot, once every activation
        # that still meets the slot's old weights has left that row
        if not loading and load_fold < F:
            p = (load_fold & 1) if double_buffer else 0
            ok = slot_started[p]
            if scalesim:
                ok = ok and outstanding == 0 and drained_at < t
            if ok:
                loading = True
                load_row = 0
                load_slot = p
                slot_fold[p] = load_fold
                slot_started[p] = False
                slot_ready[p] = BIG
        if loading and owed[load_slot] == ring_in[load_slot, (t - load_row - (C - 1)) & mask]:
            kf = load_fold % KF
            nt = load_fold // KF
            r = load_row
            # WS rows: 0, 1 slot-0 lanes; 2, 3 slot-1 minus slot-0; 4, 5 slot-1 lanes
            lane_row = 0 if load_slot == 0 else 4
            for c in range(C):
                e = c * B + 1 + r
                WS[lane_row, e] = Wf[kf, nt, 0, r, c]
                WS[lane_row + 1, e] = Wf[kf, nt, 1, r, c]
                WS[2, e] = WS[4, e] - WS[0, e]
                WS[3, e] = WS[5, e] - WS[1, e]
            load_row += 1
            if load_row == R:
                loading = False
                slot_ready[load_slot] = t + 1
                load_fold += 1
        t += 1
    return t


def _state(rows, cols, dtype):
    """Zeroed PE state: the activation window buffer [3, (D + C) blocks of R + 1], the
    weight planes [6, C (R + 1)] and the two partial-sum buffers."""
    b = rows + 1
    blocks = 4 * cols + cols  # the window re-bases every 4C cycles
    return (np.zeros((3, blocks * b), dtype), np.zeros((6, cols * b), dtype),
            np.zeros(cols * b, dtype), np.zeros(cols * b, dtype))


def register_dtype(x_low, w_low, rows: int):
    """float32 when no partial sum of one fold can reach 2^24 (then every sum of these
    integers is exact in float32, in any order), else float64."""
    xmax = int(np.abs(x_low).max()) if x_low.size else 0
    wmax = int(np.abs(w_low).max()) if w_low.size else 0
    # 4, not 2: the slot differences w1 - w0 reach twice the weight range
    return np.float32 if 4 * rows * xmax * wmax < 2 ** 24 else np.float64


def pack_folds(x_low, w_low, plan: FoldPlan, rows: int, cols: int, dtype=np.int32):
    """Lay out fold tiles for the array.

    ``x_low`` [M, K] and ``w_low`` [N, K] hold the codes as they enter the PEs (4-bit
    columns already lowered; per-weight shifts already applied for ``"weight"``
    granularity). Returns ``Xf`` [KF, M, R, 2] and ``Wf`` [KF, NT, 2, R, C] in ``dtype``.
    """
    m, k = x_low.shape
    n = w_low.shape[0]
    kf_n = plan.n_folds
    nt = max(1, -(-n // cols))
    idx = np.full((kf_n, rows, 2), k, dtype=np.int64)  # k = the zero column
    for f in range(kf_n):
        fc = plan.fold_cols(f)
        if plan.bits[f] == 4:
            idx[f].reshape(-1)[:len(fc)] = fc
        else:
            idx[f, :len(fc), 0] = fc
    xz = np.concatenate([x_low, np.zeros((m, 1), x_low.dtype)], axis=1).astype(dtype)
    wz = np.zeros((nt * cols, k + 1), dtype=dtype)
    wz[:n, :k] = w_low
    Xf = np.ascontiguousarray(np.transpose(xz[:, idx], (1, 0, 2, 3)))  # [KF, M, R, 2]
    wg = wz[:, idx]                                                   # [NT*C, KF, R, 2]
    wg = wg.reshape(nt, cols, kf_n, rows, 2)
    Wf = np.ascontiguousarray(np.transpose(wg, (2, 0, 4, 3, 1)))       # [KF, NT, 2, R, C]
    return Xf, Wf


def run_array(x_low, w_low, plan: FoldPlan, xs, ws, *, rows: int, cols: int,
              double_buffer: bool = True, scalesim: bool = False):
    """Run a fold plan cycle by cycle. ``xs`` [KF, M] and ``ws`` [KF, N] are the per-fold
    shift tables. Returns ``(acc int64 [M, N], cycles, starts)``."""
    m = x_low.shape[0]
    n = w_low.shape[0]
    dtype = register_dtype(x_low, w_low, rows)
    Xf, Wf = pack_folds(x_low, w_low, plan, rows, cols, dtype)
    acc = np.zeros(m * n, dtype=np.int64)
    f_total = plan.n_folds * Wf.shape[1]
    starts = np.zeros(max(f_total, 1), dtype=np.int64)
    if plan.n_folds == 0 or m == 0 or n == 0:
        return acc.reshape(m, n), 0, starts[:0]
    xz = np.concatenate([Xf.reshape(-1), np.zeros(2 * rows, dtype)])
    cyc = _run_array(xz, Wf, np.ascontiguousarray(xs, dtype=np.int64),
                     np.ascontiguousarray(ws, dtype=np.int64).reshape(-1), m, n, rows, cols,
                     bool(double_buffer and not scalesim), bool(scalesim), acc, starts,
                     *_state(rows, cols, dtype))
    if cyc < 0:
        raise RuntimeError("PE array controller made no progress (internal error)")
    return acc.reshape(m, n), int(cyc), starts
