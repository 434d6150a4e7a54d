"""The output/vector unit: epilogues and element-wise ops on requantized codes.

Integer ops call ``numeric.int_ops`` / ``numeric.rounding`` and the float ops call
``numeric.float_ops`` (the one implementation), so results are the quant reference's
integers. Cost: ``vector_startup + ceil(elements / lanes) * cost[op]`` cycles
(pooling counts window elements). Ops writing codes can OR-reduce the magnitudes of what
they write into per-group masks (dynamic extraction of the consumer's 4-bit groups).
"""

from __future__ import annotations

import numpy as np

from numeric import float_ops, int_ops
from numeric.rounding import requantize

from . import isa
from .errors import ISAError, SimError
from .extract import magnitude_bits


def _cost(cfg, op, elems):
    return cfg.vector_startup + -(-int(elems) // cfg.vector_lanes) * cfg.vector_costs[op]


def _floats(sram, addr, count, where):
    bits = sram.span("param", addr, count, where).astype(np.int64)
    return (bits & 0xFFFFFFFF).astype(np.uint32).view(np.float32)


def _or_reduce(sram, ins, codes, cols, where):
    """OR the magnitudes of ``codes`` [..., cols] into the group masks (``codes`` None:
    a timing-only run, which counts the table traffic and skips the values)."""
    if ins.or_addr < 0:
        return
    ch = ins.or_ch0 + np.arange(cols)
    g = ch // ins.or_group
    g0, g1 = int(g.min()), int(g.max()) + 1
    table = sram.span("param", ins.or_addr + g0, g1 - g0, where, write=True)
    if ins.or_reset:
        table[:] = 0
    if codes is None:
        return
    mag = magnitude_bits(codes).reshape(-1, cols)
    colmask = np.bitwise_or.reduce(mag, axis=0) if mag.shape[0] else np.zeros(cols, np.int64)
    for gi in range(g0, g1):
        table[gi - g0] |= int(np.bitwise_or.reduce(colmask[g == gi]))


def execute(ins, sram, cfg, where, layer_name="") -> int:
    """Run one vector instruction on SRAM; return its cycles. On an SRAM without values
    (timing-only run) the same blocks are checked and counted and nothing is computed."""
    if isinstance(ins, isa.Pool):
        return _pool(ins, sram, cfg, where)
    rows, cols = ins.rows, ins.cols
    y = None
    if isinstance(ins, isa.Requant):
        acc = sram.block(ins.src_buf, ins.src_addr, rows, cols, ins.src_stride, where)
        bias = (sram.span("param", ins.bias_addr, cols, where) if ins.bias_addr >= 0
                else None)
        if acc is not None:
            acc = acc.astype(np.int64)
            if bias is not None:
                acc = acc + bias[None, :]
            int_ops.check_int32(acc, layer_name or where)
        m = sram.span("param", ins.mult_addr, cols, where)
        s = sram.span("param", ins.shift_addr, cols, where)
        if np.any(s < 0) or np.any(s > 62):
            raise SimError(f"{where}: requantize shift table holds values outside [0, 62]")
        if acc is not None:
            y = requantize(acc, m[None, :], s[None, :], ins.lo, ins.hi)
        op = "requant"
    elif isinstance(ins, isa.Clamp):
        x = sram.block(ins.src_buf, ins.src_addr, rows, cols, ins.src_stride, where)
        if x is not None:
            y = int_ops.clamp(x, ins.lo, ins.hi)
        op = "clamp"
    elif isinstance(ins, isa.Add):
        a = sram.block(ins.a_buf, ins.a_addr, rows, cols, ins.a_stride, where)
        b = sram.block(ins.b_buf, ins.b_addr, rows, cols, ins.b_stride, where)
        if a is not None:
            y = int_ops.add(a, b, ins.ma, ins.mb, ins.s, ins.lo, ins.hi)
        op = "add"
    elif isinstance(ins, isa.Reorder):
        perm = sram.span("param", ins.perm_addr, cols, where).astype(np.int64)
        width = int(perm.max()) + 1 if perm.size else 0
        if perm.size and perm.min() < 0:
            raise SimError(f"{where}: REORDER permutation table holds negative indices")
        stride = ins.src_stride or width
        if width > stride:
            raise SimError(f"{where}: REORDER index {width - 1} beyond the source row "
                           f"(stride {stride})")
        x = sram.block(ins.src_buf, ins.src_addr, rows, width, stride, where)
        if x is not None:
            y = x[:, perm]
        op = "reorder"
    elif isinstance(ins, isa.LayerNorm):
        x = sram.block(ins.src_buf, ins.src_addr, rows, cols, ins.src_stride, where)
        gamma = _floats(sram, ins.gamma_addr, cols, where)
        beta = _floats(sram, ins.beta_addr, cols, where)
        if x is not None:
            y = float_ops.layernorm(x, ins.in_scale, gamma, beta, ins.eps, ins.out_scale,
                                    ins.out_signed)
        op = "layernorm"
    elif isinstance(ins, isa.Softmax):
        x = sram.block(ins.src_buf, ins.src_addr, rows, cols, ins.src_stride, where)
        if x is not None:
            y = float_ops.softmax(x, ins.in_scale, ins.out_scale, ins.out_signed)
        op = "softmax"
    elif isinstance(ins, isa.Gelu):
        x = sram.block(ins.src_buf, ins.src_addr, rows, cols, ins.src_stride, where)
        if x is not None:
            y = float_ops.gelu(x, ins.in_scale, ins.out_scale, ins.out_signed)
        op = "gelu"
    else:  # pragma: no cover - dispatch is by queue
        raise ISAError(f"{where}: {ins.OP} is not a vector instruction")
    dst = sram.block(ins.dst_buf, ins.dst_addr, rows, cols, ins.dst_stride, where, write=True)
    if dst is not None:
        y = np.asarray(y, dtype=np.int64)
        dst[...] = y
    _or_reduce(sram, ins, y, cols, where)
    return _cost(cfg, op, rows * cols)


def _pool(ins, sram, cfg, where) -> int:
    h, w, c, kh, kw, st, pad = ins.h, ins.w, ins.c, ins.kh, ins.kw, ins.stride, ins.pad
    oh = (h + 2 * pad - kh) // st + 1
    ow = (w + 2 * pad - kw) // st + 1
    if oh <= 0 or ow <= 0:
        raise SimError(f"{where}: pool window {kh}x{kw} does not fit {h}x{w} (pad {pad})")
    x = sram.span(ins.src_buf, ins.src_addr, h * w * c, where)
    dst = sram.span(ins.dst_buf, ins.dst_addr, oh * ow * c, where, write=True)
    y = None
    if dst is not None:
        x = x.reshape(h, w, c)
        if ins.kind == "max":
            xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)),
                        constant_values=np.iinfo(np.int64).min)
        else:
            xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(0, 1))[::st, ::st]
        win = win[:oh, :ow]  # [oh, ow, c, kh, kw]
        if ins.kind == "max":
            y = win.max(axis=(3, 4))
        else:
            y = int_ops.sum_requant(win.sum(axis=(3, 4)), ins.m, ins.s, ins.lo, ins.hi)
        y = np.asarray(y, dtype=np.int64)
        dst[:] = y.reshape(-1)
        y = y.reshape(-1, c)
    _or_reduce(sram, ins, y, c, where)
    return _cost(cfg, "pool", oh * ow * c * kh * kw)
