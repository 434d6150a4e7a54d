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
controller only looks at state (per-row counts of activations still to meet a slot,
outstanding outputs), so the cycle count measured here is an independent check of the
closed form in ``folds``.

The PE registers are held in int64 so the per-cycle update stays in one integer width
(40 % faster than int32 registers with casts); a partial sum outside int32 can only come
from a layer whose accumulators overflow, which the accumulator check reports.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .folds import FoldPlan


@njit(cache=True, nogil=True, fastmath=False, boundscheck=False)
def _pe_step(P, H0, H1, HT, W00, W01, D0, D1, base, R, C):
    """One cycle of every PE: MACs with the slot-selected weights, psums one row down.

    Rows are updated bottom-up in place, so row ``r`` reads row ``r - 1``'s value of the
    previous cycle. Plain 2-D indexing (no per-row views) keeps the loop body tight."""
    for r in range(R - 1, 0, -1):
        for c in range(C):
            cc = base + c
            t = HT[r, cc]
            P[r, c] = (P[r - 1, c] + H0[r, cc] * (W00[r, c] + t * D0[r, c])
                       + H1[r, cc] * (W01[r, c] + t * D1[r, c]))
    for c in range(C):
        cc = base + c
        t = HT[0, cc]
        P[0, c] = (H0[0, cc] * (W00[0, c] + t * D0[0, c])
                   + H1[0, cc] * (W01[0, c] + t * D1[0, c]))


@njit(cache=True, nogil=True)
def _run_array(Xf, Wf, xs, ws, M, N, R, C, double_buffer, scalesim, acc, starts,
               H0, H1, HT, P, W00, W01, W10, W11, D0, D1):
    """Step the array over all folds. Returns the cycle count (or -1 on a stuck controller).

    Xf [KF, M, R, 2] int32 activations per K fold; Wf [KF, NT, 2, R, C] int32 weights;
    xs [KF, M], ws [KF, N] int64 shift tables; acc [M, N] int64 output; starts [F] int64.
    The remaining arguments are the (zeroed) PE state, see ``run_array``.
    """
    KF = Xf.shape[0]
    NT = Wf.shape[1]
    F = KF * NT
    # the skew buffer: what entered row 0 at each recent cycle (row r sees it r cycles later)
    L = 1
    while L < R + C + 2:
        L *= 2
    mask = L - 1
    ring_f = np.full(L, -1, np.int64)
    ring_kf = np.zeros(L, np.int64)
    ring_m = np.zeros(L, np.int64)
    ring_tag = np.zeros(L, np.int64)
    BIG = np.int64(1) << 62
    slot_fold = np.full(2, -1, np.int64)
    slot_ready = np.full(2, BIG, np.int64)
    slot_started = np.ones(2, np.bool_)
    cnt = np.zeros((2, R), np.int64)
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
                for r in range(R):
                    cnt[p, r] += M
                slot_started[p] = True
                outstanding += M * C
                inj_fold += 1
        cur = inj_fold - 1
        j0 = t & mask
        if cur >= 0 and t - starts[cur] < M:
            ring_f[j0] = cur
            ring_kf[j0] = cur % KF
            ring_m[j0] = t - starts[cur]
            ring_tag[j0] = (cur & 1) if double_buffer else 0
        else:
            ring_f[j0] = -1
        # 2. PE update. Row r's activation registers form a shift chain, held as a
        # circular delay line of length C stored twice (PE (r, c) reads H[r, base + c]);
        # moving every activation one PE right is moving ``base`` back by one. Partial
        # sums move down: rows are updated bottom-up in place. The tag selects the
        # weight slot: w = W_0 + tag * (W_1 - W_0).
        base = (C - (t % C)) % C
        for r in range(R - 1, -1, -1):
            a0 = np.int64(0)
            a1 = np.int64(0)
            tag = np.int64(0)
            if t >= r:
                j = (t - r) & mask
                if ring_f[j] >= 0:
                    kf = ring_kf[j]
                    m = ring_m[j]
                    a0 = Xf[kf, m, r, 0]
                    a1 = Xf[kf, m, r, 1]
                    tag = ring_tag[j]
            H0[r, base] = a0
            H0[r, base + C] = a0
            H1[r, base] = a1
            H1[r, base + C] = a1
            HT[r, base] = tag
            HT[r, base + C] = tag
        _pe_step(P, H0, H1, HT, W00, W01, D0, D1, base, R, C)
        # 3. collect partial sums leaving the bottom row (per-fold shift-and-add)
        for c in range(C):
            t0 = t - (R - 1) - c
            if t0 < 0:
                break
            j = t0 & mask
            f = ring_f[j]
            if f >= 0:
                m = ring_m[j]
                kf = ring_kf[j]
                n = (f // KF) * C + c
                if n < N:
                    v = np.int64(P[R - 1, c]) << (xs[kf, m] + ws[kf, n])
                    if kf == 0:
                        acc[m, n] = v
                    else:
                        acc[m, n] += v
                collected += 1
                outstanding -= 1
                if outstanding == 0:
                    drained_at = t
        # 4. activations that met the last column this cycle leave their row
        for r in range(R):
            t0 = t - r - (C - 1)
            if t0 >= 0:
                j = t0 & mask
                if ring_f[j] >= 0:
                    cnt[ring_tag[j], r] -= 1
        # 5. weight loader: one row per cycle into a free slot
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
        if loading and cnt[load_slot, load_row] == 0:
            kf = load_fold % KF
            nt = load_fold // KF
            r = load_row
            if load_slot == 0:
                for c in range(C):
                    W00[r, c] = Wf[kf, nt, 0, r, c]
                    W01[r, c] = Wf[kf, nt, 1, r, c]
            else:
                for c in range(C):
                    W10[r, c] = Wf[kf, nt, 0, r, c]
                    W11[r, c] = Wf[kf, nt, 1, r, c]
            for c in range(C):
                D0[r, c] = W10[r, c] - W00[r, c]
                D1[r, c] = W11[r, c] - W01[r, c]
            load_row += 1
            if load_row == R:
                loading = False
                slot_ready[load_slot] = t + 1
                load_fold += 1
        t += 1
    return t


def _state(rows, cols):
    """Zeroed PE state: activation delay lines (2 lanes + tag), psums, 2 slots x 2 lanes
    of weights and the slot differences."""
    z2 = lambda: np.zeros((rows, 2 * cols), np.int64)  # noqa: E731
    z = lambda: np.zeros((rows, cols), np.int64)  # noqa: E731
    return (z2(), z2(), z2(), z(), z(), z(), z(), z(), z(), z())


def pack_folds(x_low, w_low, plan: FoldPlan, rows: int, cols: int):
    """Lay out fold tiles for the array.

    ``x_low`` [M, K] and ``w_low`` [N, K] hold the codes as they enter the PEs (4-bit
    columns already lowered; per-weight shifts already applied for ``"weight"``
    granularity). Returns ``Xf`` [KF, M, R, 2] and ``Wf`` [KF, NT, 2, R, C] (int32).
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
    xz = np.concatenate([x_low, np.zeros((m, 1), x_low.dtype)], axis=1).astype(np.int32)
    wz = np.zeros((nt * cols, k + 1), dtype=np.int32)
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
    Xf, Wf = pack_folds(x_low, w_low, plan, rows, cols)
    acc = np.zeros((m, n), dtype=np.int64)
    f_total = plan.n_folds * Wf.shape[1]
    starts = np.zeros(max(f_total, 1), dtype=np.int64)
    if plan.n_folds == 0 or m == 0 or n == 0:
        return acc, 0, starts[:0]
    cyc = _run_array(Xf, Wf, np.ascontiguousarray(xs, dtype=np.int64),
                     np.ascontiguousarray(ws, dtype=np.int64), m, n, rows, cols,
                     bool(double_buffer and not scalesim), bool(scalesim), acc, starts,
                     *_state(rows, cols))
    if cyc < 0:
        raise RuntimeError("PE array controller made no progress (internal error)")
    return acc, int(cyc), starts
