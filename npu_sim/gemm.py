"""One mixed 4/8-bit GEMM or conv on the PE array: ``run_gemm`` and ``run_conv2d``.

Both return the int64 accumulators (equal to ``quant.mixed_gemm`` / ``quant.mixed_conv2d``)
and the PE-array cycles of the fold sequence with the operands already in SRAM (DMA and
vector work are the program-level machine's business, see ``machine``).

``mode="fast"``: values from one float64 BLAS product of the *effective* operands
(4-bit codes shifted left by their fold shift, which is the per-fold shift-and-add
distributed over the two factors; exact below 2**53) and cycles from the closed form.
``mode="exact"``: the fold tiles run through ``pe_array`` cycle by cycle; same values,
same cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numeric.checks import check_codes, check_mixed_args, check_order, check_range_table, int_pair
from numeric.extraction import lower4
from numeric.ranges import group_bounds

from .config import NPUConfig
from .errors import ConfigError, SimError
from .extract import or_reduce_groups, shifts_from_masks
from .folds import FoldCounts, FoldPlan, fold_cycles, plan_counts, plan_folds
from .pe_array import run_array
from .static_shifts import activation_shifts, weight_shifts

MODES = ("fast", "exact")


@dataclass
class GemmResult:
    """Accumulators ``acc`` (int64 [M, N], or [B, O, OH, OW] for a conv), array ``cycles``
    and ``stats`` (folds, utilization, bytes, ...)."""

    acc: np.ndarray
    cycles: int
    stats: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers
def _check_args(mode, timing, extraction, weight_shift, group_size, n4, c):
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    if timing not in ("default", "scalesim"):
        raise ConfigError(f"timing must be 'default' or 'scalesim', got {timing!r}")
    check_mixed_args(n4, c, group_size, extraction, weight_shift, error=ConfigError,
                     n4_error=SimError)


@dataclass
class _Operands:
    """Operands as they enter the array, in (kernel position, channel) K order.

    fast mode fills ``x_eff``/``w_eff`` (float32, 4-bit codes shifted by their fold
    shift); exact mode fills ``x_low``/``w_low`` (int, 4-bit columns lowered) and the
    per-group shift tables applied by the accumulator.
    """

    x_eff: np.ndarray | None = None
    w_eff: np.ndarray | None = None
    x_low: np.ndarray | None = None
    w_low: np.ndarray | None = None
    xs_group: np.ndarray | None = None  # [M, ng] activation shift per row and group
    ws_group: np.ndarray | None = None  # [N, ng] weight shift (0 for "weight")


def _lower_channels(xc, wc, bounds, ex_rows, ew, weight_shift, x_signed, mode):
    """Lower the 4-bit channels of ``xc`` [S, ..., C] (``ex_rows`` [S, ng]) and ``wc``
    [N, ..., C] (``ew`` [N, ng], or per weight [N, ..., n4] for ``"weight"``).

    fast: returns the effective operands (4-bit codes shifted left by their fold shift);
    exact: returns the codes as they enter the PEs (per-weight shifts applied, since the
    PE's shifter is in front of the accumulation).
    """
    if not bounds:
        return xc, wc
    fast = mode == "fast"
    xl = xc.copy()
    wl = wc.copy()
    xexp = (slice(None),) + (None,) * (xc.ndim - 1)
    wexp = (slice(None),) + (None,) * (wc.ndim - 1)
    for g, (a, z) in enumerate(bounds):
        ex = ex_rows[:, g][xexp]
        x4 = lower4(xc[..., a:z], ex, x_signed)
        xl[..., a:z] = (x4 << ex) if fast else x4
        if weight_shift == "group":
            eg = ew[:, g][wexp]
            w4 = lower4(wc[..., a:z], eg, True)
            wl[..., a:z] = (w4 << eg) if fast else w4
    if weight_shift == "weight":
        n4 = bounds[-1][1]
        wl[..., :n4] = lower4(wc[..., :n4], ew, True) << ew
    return xl, wl


def exact_int_matmul(xe, we):
    """``xe @ we.T`` for integer-valued float32 operands, exactly, as int64.

    K is cut into chunks short enough that every float32 partial sum stays below 2**24
    (so BLAS's summation order cannot round); chunk results add up in float64.
    """
    m, k = xe.shape
    n = we.shape[0]
    if k == 0 or m == 0 or n == 0:
        return np.zeros((m, n), np.int64)
    amax = float(np.abs(xe).max()) or 1.0
    wmax = float(np.abs(we).max()) or 1.0
    chunk = max(1, int((2 ** 24 - 1) // (amax * wmax)))
    if chunk >= k:
        return (xe @ we.T).astype(np.int64)
    acc = np.zeros((m, n), np.float64)
    for k0 in range(0, k, chunk):
        acc += xe[:, k0:k0 + chunk] @ we[:, k0:k0 + chunk].T
    return acc.astype(np.int64)


def fold_stats(counts: FoldCounts, m, n, cycles, cfg: NPUConfig, timing, k_total,
               mode="fast"):
    """Statistics of a fold sequence (``folds.FoldCounts``) that took ``cycles``; values
    play no part, so full and timing-only runs share this."""
    R, C = cfg.rows, cfg.cols
    scalesim = timing == "scalesim"
    nt = -(-n // C) if n else 0
    f_total = counts.n_folds * nt
    pe_busy = int(m * counts.rows_used * n)  # n = sum over N tiles of min(C, n - j C)
    slots4 = counts.n_folds4 * 2 * R
    return {
        "M": m, "N": n, "K": k_total,
        "folds": f_total, "folds4": counts.n_folds4 * nt,
        "folds8": (counts.n_folds - counts.n_folds4) * nt, "n_tiles": nt,
        "k_folds": counts.n_folds,
        "macs": int(m * n * k_total),
        "pe_cycles": int(cycles) * R * C,
        "utilization": pe_busy / (cycles * R * C) if cycles else 0.0,
        "fold4_fill": counts.used4 / slots4 if slots4 else 1.0,
        "weight_load_cycles": f_total * R,
        "psum_writes_bytes": (f_total if scalesim else nt) * m * C * 4,
        "timing": timing, "mode": mode,
    }


def array_cycles(n_folds: int, m, n, cfg: NPUConfig, timing) -> int:
    """PE-array cycles of ``n_folds`` K folds over ``m`` rows and ``n`` output channels
    (every N tile of ``cfg.cols`` repeats the K folds; closed form)."""
    scalesim = timing == "scalesim"
    db = cfg.double_buffer and not scalesim
    nt = -(-n // cfg.cols) if n else 0
    return int(fold_cycles(n_folds * nt, m, cfg.rows, cfg.cols, double_buffer=db,
                           scalesim=scalesim))


def _execute(ops: _Operands, plan: FoldPlan, m, n, cfg: NPUConfig, mode, timing, k_total):
    R, C = cfg.rows, cfg.cols
    scalesim = timing == "scalesim"
    db = cfg.double_buffer and not scalesim
    if mode == "fast":
        acc = exact_int_matmul(ops.x_eff, ops.w_eff)
        cycles = array_cycles(plan.n_folds, m, n, cfg, timing)
    else:
        g = plan.group
        is4 = plan.bits == 4
        gi = np.where(is4, g, 0)
        xs = np.where(is4[:, None], ops.xs_group.T[gi] if ops.xs_group.size else 0, 0)
        ws = np.where(is4[:, None], ops.ws_group.T[gi] if ops.ws_group.size else 0, 0)
        xs = np.broadcast_to(xs, (plan.n_folds, m))
        ws = np.broadcast_to(ws, (plan.n_folds, n))
        acc, cycles, _ = run_array(ops.x_low, ops.w_low, plan, xs, ws, rows=R, cols=C,
                                   double_buffer=db, scalesim=scalesim)
    return acc, int(cycles), fold_stats(plan_counts(plan), m, n, cycles, cfg, timing, k_total,
                                        mode)


# ------------------------------------------------------------------------------ GEMM
def run_gemm(x, w, n4, *, config: NPUConfig | None = None, mode="fast", timing="default",
             group_size=None, x_signed=True, extraction="effective", x_range=None,
             dynamic=False, weight_shift="group") -> GemmResult:
    """Mixed GEMM ``x`` [M, K] × ``w`` [N, K]ᵀ on the array (keywords as ``quant.mixed_gemm``).

    ``group_size`` defaults to ``config.group_size``. Dynamic extraction takes each row's
    own range per group (the producer's OR-reduce per row).
    """
    cfg = config or NPUConfig()
    g_size = cfg.group_size if group_size is None else group_size
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise SimError(f"run_gemm: need x [M, K] and w [N, K]; got {x.shape} and {w.shape}")
    k = x.shape[1]
    _check_args(mode, timing, extraction, weight_shift, g_size, n4, k)
    x = x.astype(np.int64)
    w = w.astype(np.int64)
    check_codes(x, w, x_signed, error=SimError, where="run_gemm")
    x_range = check_range_table(x_range, k, error=SimError, where="run_gemm")
    m, n = x.shape[0], w.shape[0]
    bounds = group_bounds(n4, k, g_size)
    # shift tables: the weight shifts, and the static activation shifts from the
    # calibrated range (or the codes' own range), as the compiler writes them
    ew = weight_shifts(w, bounds, weight_shift, extraction)
    if dynamic:
        ex_rows = shifts_from_masks(or_reduce_groups(x[:, None, :], bounds, axis_rows=0),
                                    x_signed, extraction)
    else:
        xs = activation_shifts(x if x_range is None else x_range, bounds, x_signed,
                               extraction, "run_gemm")
        ex_rows = np.broadcast_to(xs[None, :], (m, len(bounds)))
    xl, wl = _lower_channels(x, w, bounds, ex_rows, ew, weight_shift, x_signed, mode)
    if mode == "fast":
        ops = _Operands(x_eff=xl.astype(np.float32), w_eff=wl.astype(np.float32))
    else:
        ops = _Operands(x_low=xl, w_low=wl, xs_group=np.asarray(ex_rows, np.int64),
                        ws_group=ew if weight_shift == "group"
                        else np.zeros((n, len(bounds)), np.int64))
    plan = plan_folds(k, n4, group_size=g_size, rows=cfg.rows)
    acc, cycles, stats = _execute(ops, plan, m, n, cfg, mode, timing, k)
    stats["n4"] = n4
    return GemmResult(acc, cycles, stats)


# ------------------------------------------------------------------------------ conv
def im2col_nhwc(x, kh, kw, stride, padding, dilation):
    """[B, H, W, C] -> ([B*OH*OW, kh*kw*C] with k = (kh, kw, c), OH, OW)."""
    sh, sw = stride
    ph, pw = padding
    dh, dw = dilation
    b, h, wd, c = x.shape
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))) if ph or pw else x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise SimError(f"run_conv2d: kernel {kh}x{kw} does not fit the padded {h}x{wd} input")
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, shape=(b, oh, ow, kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False)
    return view.reshape(b * oh * ow, kh * kw * c), oh, ow


def conv_core(xh, wh, n4, bounds, ex_s, ew, *, cfg, mode, timing, weight_shift, x_signed,
              extraction, group_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Channels-last conv on the array. ``xh`` [S, H, W, C] and ``wh`` [O, kh, kw, C] codes in
    priority order, ``ex_s`` [S, groups] activation shifts, ``ew`` [O, groups] weight
    shifts (or [O, kh, kw, n4] per weight). Returns (acc [S*OH*OW, O], cycles, stats, OH, OW).
    """
    b = xh.shape[0]
    o, kh, kw, c = wh.shape
    xl, wl = _lower_channels(xh, wh, bounds, ex_s, ew, weight_shift, x_signed, mode)
    if mode == "fast":
        xcol, oh, ow = im2col_nhwc(xl.astype(np.float32), kh, kw, stride, padding, dilation)
        m = b * oh * ow
        ops = _Operands(x_eff=xcol, w_eff=wl.reshape(o, -1).astype(np.float32))
    else:
        xcol, oh, ow = im2col_nhwc(xl, kh, kw, stride, padding, dilation)
        m = b * oh * ow
        ops = _Operands(x_low=np.ascontiguousarray(xcol), w_low=wl.reshape(o, -1),
                        xs_group=np.repeat(np.asarray(ex_s, np.int64), oh * ow, axis=0),
                        ws_group=ew if weight_shift == "group"
                        else np.zeros((o, len(bounds)), np.int64))
    plan = plan_folds(c, n4, group_size=group_size, rows=cfg.rows,
                      kpos=kh * kw)
    acc, cycles, stats = _execute(ops, plan, m, o, cfg, mode, timing, kh * kw * c)
    return acc, cycles, stats, oh, ow


def run_conv2d(x, w, n4, *, order=None, config: NPUConfig | None = None, mode="fast",
               timing="default", group_size=None, x_signed=True, extraction="effective",
               x_range=None, dynamic=False, weight_shift="group", stride=1, padding=0,
               dilation=1) -> GemmResult:
    """Dense conv on the array, equal to ``quant.mixed_conv2d`` (same arguments, NCHW).

    Internally the input is channels-last with channels in priority order (``order``),
    lowered by im2col with ``k = (kh, kw, c)``; 4-bit folds walk (group, kh, kw, c).
    ``.acc`` is [B, O, OH, OW]. Dynamic extraction is per sample (image).
    """
    cfg = config or NPUConfig()
    g_size = cfg.group_size if group_size is None else group_size
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise SimError(f"run_conv2d: need x [B, C, H, W] and w [O, C, kh, kw] with equal C; "
                       f"got {x.shape} and {w.shape}")
    c = x.shape[1]
    _check_args(mode, timing, extraction, weight_shift, g_size, n4, c)
    x = x.astype(np.int64)
    w = w.astype(np.int64)
    check_codes(x, w, x_signed, error=SimError, where="run_conv2d")
    stride, padding, dilation = (int_pair(v, f"run_conv2d: {name}", error=SimError)
                                 for v, name in ((stride, "stride"), (padding, "padding"),
                                                 (dilation, "dilation")))
    order = np.arange(c) if order is None else np.asarray(order, dtype=np.int64)
    check_order(order, c, error=SimError, where="run_conv2d")
    x_range = check_range_table(x_range, c, error=SimError, where="run_conv2d", dim="C")
    b = x.shape[0]
    o, _, kh, kw = w.shape
    bounds = group_bounds(n4, c, g_size)
    xh = np.ascontiguousarray(x[:, order].transpose(0, 2, 3, 1))   # [B, H, W, C] priority
    wh = np.ascontiguousarray(w[:, order].transpose(0, 2, 3, 1))   # [O, kh, kw, C]
    # compiler-side tables: [O, groups] (or [O, kh, kw, n4] per weight), static shifts
    ew = weight_shifts(wh, bounds, weight_shift, extraction)
    if dynamic:  # the producer's OR-reduce, per image
        ex_s = shifts_from_masks(or_reduce_groups(xh, bounds, axis_rows=0), x_signed,
                                 extraction)
    else:
        xs_static = activation_shifts(xh if x_range is None else x_range[:, order], bounds,
                                      x_signed, extraction, "run_conv2d")
        ex_s = np.broadcast_to(xs_static[None, :], (b, len(bounds)))
    acc, cycles, stats, oh, ow = conv_core(xh, wh, n4, bounds, ex_s, ew, cfg=cfg, mode=mode,
                                           timing=timing, weight_shift=weight_shift,
                                           x_signed=x_signed, extraction=extraction,
                                           group_size=g_size, stride=stride, padding=padding, dilation=dilation)
    acc = acc.reshape(b, oh, ow, o).transpose(0, 3, 1, 2)
    stats["n4"] = n4
    return GemmResult(np.ascontiguousarray(acc), cycles, stats)
