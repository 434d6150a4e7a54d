"""Lowering of conv / Linear / depthwise conv / attention matmul onto the PE array.

A layer is cut into tiles: output-channel tiles (``n_t`` channels whose weights fit one
weight-buffer slot) and, inside each, bands of output rows (whose input rows, int32
accumulators and output codes fit their slots). Per tile: DMA the input band (with zero
padding), the weights and tables once per channel tile, one GEMM instruction, one
REQUANT (bias + dyadic requantize + fused ReLU clamp), one DMA store.
"""

from __future__ import annotations

import math

import numpy as np

from npu_sim import isa
from numeric.checks import pair

from ..errors import CompileError, TilingError
from ..tables import (
    act_shift_table,
    ident,
    int32_table,
    weight_shift_table,
    weights_nk,
)


def _pair(v, what, name):
    a, b = pair(v)
    if a != b:
        raise CompileError(f"layer '{name}': non-square {what} {v} is not supported by the NPU")
    return int(a)


def choose_tiles(ctx, name, n, w_per_n, rows_for, out_w, band_rows_max, table_per_n,
                 table_fixed, step):
    """(n_t, rows_t): output-channel tile and output rows per band that fit the slots."""
    sp = ctx.sram
    n_t = min(n, max(step, (sp.w_slot // max(w_per_n, 1)) // step * step))
    if n_t * w_per_n > sp.w_slot:
        raise TilingError(f"layer '{name}': the weights of even {n_t} output channels "
                          f"({n_t * w_per_n} bytes) exceed a 'wgt' buffer slot ({sp.w_slot})")
    while n_t > step and table_per_n * n_t + table_fixed > sp.t_slot:
        n_t -= step
    if table_per_n * n_t + table_fixed > sp.t_slot:
        raise TilingError(f"layer '{name}': tables need {table_per_n * n_t + table_fixed} "
                          f"entries, more than a 'param' buffer slot ({sp.t_slot})")
    best = 0
    for r in range(band_rows_max, 0, -1):
        if (rows_for(r) <= sp.in_slot and r * out_w * n_t <= sp.acc_slot
                and r * out_w * n_t <= sp.out_slot):
            best = r
            break
    if not best:
        which = "inp" if rows_for(1) > sp.in_slot else "acc"
        raise TilingError(f"layer '{name}': one output row does not fit the '{which}' buffer "
                          f"slot (input band {rows_for(1)} bytes, slot {sp.in_slot}; "
                          f"output {out_w * n_t} elements, acc slot {sp.acc_slot})")
    return n_t, best


class _Tables:
    """Per-layer tables in DRAM and their param-slot layout per channel tile."""

    def __init__(self, ctx, name, bias, mult, shift, ng=0, ws=None, xs=None):
        self.ctx = ctx
        self.n = len(mult)
        self.bias = None if bias is None else ctx.table(f"{name}:bias", int32_table(name, bias))
        self.mult = ctx.table(f"{name}:mult", int32_table(name, mult))
        self.shift = ctx.table(f"{name}:shift", int32_table(name, shift))
        self.ws = None if ws is None else ctx.table(f"{name}:wshift", ws.astype(np.int32))
        self.ng = ng
        self.xs = None if xs is None else ctx.table(f"{name}:xshift", xs.astype(np.int32))

    def per_n(self):
        return (3 if self.bias is not None else 2) + (self.ng if self.ws is not None else 0)

    def fixed(self):
        return 0 if self.xs is None else self.ng

    def loads(self, slot_addr, n0, n_t):
        """DMA of the tables for channels [n0, n0 + n_t) into the slot; returns (loads, addrs)."""
        a = slot_addr
        out, addrs = [], {}
        for key in ("bias", "mult", "shift"):
            base = getattr(self, key)
            if base is None:
                addrs[key] = -1
                continue
            out.append(isa.Load(buf="param", sram_addr=a, dram_addr=base + 4 * n0, rows=1, cols=n_t))
            addrs[key] = a
            a += n_t
        if self.ws is not None:
            out.append(isa.Load(buf="param", sram_addr=a, dram_addr=self.ws + 4 * n0,
                                rows=self.ng, cols=n_t, dram_stride=self.n))
            addrs["ws"] = a
            a += self.ng * n_t
        if self.xs is not None:
            out.append(isa.Load(buf="param", sram_addr=a, dram_addr=self.xs, rows=1, cols=self.ng))
            addrs["xs"] = a
            a += self.ng
        return out, addrs


def _conv_pads(L, name, extra):
    """(top, left, right) padding of a conv plus a zero-pad module in front of it."""
    if isinstance(L.padding, str):
        raise CompileError(f"layer '{name}': string padding {L.padding!r} is not supported")
    ph, pw = (tuple(L.padding) if isinstance(L.padding, (tuple, list)) else (L.padding,) * 2)
    el, er, et, _ = extra
    return ph + et, pw + el, pw + er


def _weight_tables(ctx, name, L, p_in, p_out, group_shift, extraction):
    """(weights [N, kh, kw, C] in memory orders, weight shift table or None). They do not
    depend on the NPU configuration, so they are kept with the IR graph: compiling one
    graph for many configurations permutes each layer's weights once."""
    cache = ctx.g.graph.setdefault("weight_tables", {})
    key = (name, p_in.tobytes(), p_out.tobytes(), group_shift, extraction, L.group_size)
    if key not in cache:
        w = weights_nk(L, p_in, p_out)
        ws = weight_shift_table(w, L.group_size, extraction) if group_shift else None
        cache[key] = (w, ws)
    return cache[key]


def lower_dense(ctx, name, d, x, y, extra=(0, 0, 0, 0)):
    """conv (groups = 1) or Linear node ``name`` reading tensor ``x``, writing ``y``.

    ``extra``: zero padding (left, right, top, bottom) of a pad op in front of the conv."""
    L = d["layer"]
    qcfg = ctx.qcfg
    p_in = x.perm if x.perm is not None else ident(L.in_channels)
    p_out = y.perm if y.perm is not None else ident(L.out_channels)
    if L.eligible and not np.array_equal(p_in, L.order):
        raise CompileError(f"layer '{name}': input channels are not in the layer's priority "
                           "order (layout pass bug)")
    g_size = L.group_size
    four = L.eligible
    extraction = qcfg.extraction
    w, ws = _weight_tables(ctx, name, L, p_in, p_out,
                           four and qcfg.weight_shift == "group", extraction)
    n, kh, kw, c = w.shape
    ng = math.ceil(c / g_size) if four else 0
    xs = None
    if four and not qcfg.dynamic:
        xs = act_shift_table(L.x_range, p_in, g_size, L.x_signed, extraction)
    tabs = _Tables(ctx, name, L.bias[p_out], L.m[p_out], L.s[p_out], ng, ws, xs)
    wname = f"{name}:weights"
    ctx.table(wname, w.reshape(n, -1), dtype="int8")
    w_addr_dram = ctx.program.addr(wname)
    reg = ctx.program.max4_reg(name) if four else -1
    common = dict(x_signed=L.x_signed, max4_reg=reg, group_size=g_size, dynamic=qcfg.dynamic and four,
                  naive=extraction == "naive", weight_shift=qcfg.weight_shift)

    if L.kind == "conv":
        sh = _pair(L.stride, "stride", name)
        dil = _pair(L.dilation, "dilation", name)
        pad, pl, pr = _conv_pads(L, name, extra)
        bsz, _, hh, ww = x.shape
        _, _, oh, ow = y.shape
        eff = (kh - 1) * dil + 1
        wp = ww + pl + pr
        images = [(b, b) for b in range(bsz)]
        rows_for = lambda r: ((r - 1) * sh + eff) * wp * c  # noqa: E731
        out_rows, out_w = oh, ow
    else:
        rows_total = x.rows
        bsz = x.shape[0] if len(x.shape) > 1 else 1
        per_image = (qcfg.dynamic and four) or y.name in ctx.mask_group
        per = rows_total // bsz if per_image else rows_total
        images = [(b, b) for b in range(bsz)] if per_image else [(0, None)]
        rows_for = lambda r: r * c  # noqa: E731
        out_rows, out_w = per, 1
        sh, dil, pad, pl, pr, eff, wp, hh, ww = 1, 1, 0, 0, 0, 1, 1, per, 1
    # OR-mask writers: output-channel tiles start on mask groups (64 keeps the array's
    # column tiles whole for the usual G of 16, 32, 64)
    step = math.lcm(64, ctx.mask_group[y.name]) if y.name in ctx.mask_group else ctx.cfg.cols
    n_t, rows_t = choose_tiles(ctx, name, n, kh * kw * c, rows_for, out_w, out_rows,
                               tabs.per_n(), tabs.fixed(), step)
    sp = ctx.sram
    pipe = ctx.em.pipeline(name, ("load", "compute", "vector", "store"))
    i = 0
    for nt, n0 in enumerate(range(0, n, n_t)):
        nn = min(n_t, n - n0)
        for b, mask_img in images:
            for r0 in range(0, out_rows, rows_t):
                rr = min(rows_t, out_rows - r0)
                slot = i % 2
                loads = []
                first_of_nt = (b == images[0][0]) and r0 == 0
                if first_of_nt:
                    loads.append(isa.Load(buf="wgt", sram_addr=sp.w_addr[nt % 2],
                                          dram_addr=w_addr_dram + n0 * kh * kw * c,
                                          rows=nn, cols=kh * kw * c))
                tl, taddr = tabs.loads(sp.t_addr[nt % 2], n0, nn)
                if first_of_nt:
                    loads += tl
                if L.kind == "conv":
                    in0 = r0 * sh - pad
                    in1 = (r0 + rr - 1) * sh - pad + eff
                    lo, hi = max(in0, 0), min(in1, hh)
                    loads.append(isa.Load(buf="inp", sram_addr=sp.in_addr[slot],
                                          dram_addr=ctx.addr(x, ((b * hh + lo) * ww) * c),
                                          rows=hi - lo, cols=ww * c, pad_top=lo - in0,
                                          pad_bottom=in1 - hi, pad_left=pl * c,
                                          pad_right=pr * c))
                    in_h, in_w = in1 - in0, wp
                    out_off = ((b * oh + r0) * ow) * n + n0
                    m_rows = rr * ow
                else:
                    base_row = (b * per if mask_img is not None else 0) + r0
                    loads.append(isa.Load(buf="inp", sram_addr=sp.in_addr[slot],
                                          dram_addr=ctx.addr(x, base_row * c), rows=rr, cols=c))
                    in_h, in_w = rr, 1
                    out_off = base_row * n + n0
                    m_rows = rr
                xs_addr = -1
                if four and qcfg.dynamic:
                    xs_addr = ctx.mask_addr(x.name, b if mask_img is not None else 0)
                elif four:
                    xs_addr = taddr["xs"]
                gemm = isa.Gemm(inp_addr=sp.in_addr[slot], in_h=in_h, in_w=in_w, in_c=c, kh=kh,
                                kw=kw, stride=sh, dilation=dil, w_addr=sp.w_addr[nt % 2], n=nn,
                                acc_addr=sp.acc_addr[slot], xs_addr=xs_addr,
                                ws_addr=taddr.get("ws", -1) if four else -1, **common)
                req = isa.Requant(src_addr=sp.acc_addr[slot], rows=m_rows, cols=nn,
                                  bias_addr=taddr["bias"], mult_addr=taddr["mult"],
                                  shift_addr=taddr["shift"], lo=L.lo, hi=L.hi,
                                  dst_addr=sp.out_addr[slot],
                                  **ctx.or_fields(y.name, b, n0, r0 == 0))
                st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                               dram_addr=ctx.addr(y, out_off), rows=m_rows, cols=nn,
                               dram_stride=n)
                pipe.tile(load=loads, compute=[gemm], vector=[req], store=[st])
                i += 1
    pipe.close()


def lower_depthwise(ctx, name, d, x, y, extra=(0, 0, 0, 0)):
    """Depthwise conv as block-diagonal GEMMs over tiles of ``cols`` channels (8-bit)."""
    L = d["layer"]
    perm = x.perm if x.perm is not None else ident(L.in_channels)
    if y.perm is not None and not np.array_equal(y.perm, perm):
        raise CompileError(f"layer '{name}': depthwise output order differs from its input")
    sh = _pair(L.stride, "stride", name)
    dil = _pair(L.dilation, "dilation", name)
    pad, pl, pr = _conv_pads(L, name, extra)
    bsz, c, hh, ww = x.shape
    _, _, oh, ow = y.shape
    kh, kw = L.kernel
    eff = (kh - 1) * dil + 1
    wp = ww + pl + pr
    c_t = ctx.mask_tile(y.name, min(c, ctx.cfg.cols))  # channel tiles start mask groups
    wk = L.w_codes[perm][:, 0]  # [C, kh, kw] in memory order
    n_tiles = -(-c // c_t)
    blk = np.zeros((n_tiles, c_t, kh, kw, c_t), dtype=np.int64)
    for t in range(n_tiles):
        for j in range(min(c_t, c - t * c_t)):
            blk[t, j, :, :, j] = wk[t * c_t + j]
    wname = f"{name}:weights"
    ctx.table(wname, blk.reshape(n_tiles * c_t, -1), dtype="int8")
    w_dram = ctx.program.addr(wname)
    tabs = _Tables(ctx, name, L.bias[perm], L.m[perm], L.s[perm])
    zero = f"{name}:zeros"
    ctx.table(zero, np.zeros(wp * c_t, dtype=np.int8), dtype="int8")
    zero_addr = ctx.program.addr(zero)
    wsz = c_t * kh * kw * c_t
    rows_for = lambda r: ((r - 1) * sh + eff) * wp * c_t  # noqa: E731
    _, rows_t = choose_tiles(ctx, name, c_t, kh * kw * c_t, rows_for, ow, oh, 3, 0, c_t)
    sp = ctx.sram
    pipe = ctx.em.pipeline(name, ("load", "compute", "vector", "store"))
    i = 0
    for t in range(n_tiles):
        c0 = t * c_t
        cc = min(c_t, c - c0)
        for b in range(bsz):
            for r0 in range(0, oh, rows_t):
                rr = min(rows_t, oh - r0)
                slot = i % 2
                loads = []
                if b == 0 and r0 == 0:
                    loads.append(isa.Load(buf="wgt", sram_addr=sp.w_addr[t % 2],
                                          dram_addr=w_dram + t * wsz, rows=c_t,
                                          cols=kh * kw * c_t))
                    tl, taddr = tabs.loads(sp.t_addr[t % 2], c0, cc)
                    loads += tl
                else:
                    _, taddr = tabs.loads(sp.t_addr[t % 2], c0, cc)
                in0 = r0 * sh - pad
                in1 = (r0 + rr - 1) * sh - pad + eff
                for j, r in enumerate(range(in0, in1)):
                    dst = sp.in_addr[slot] + j * wp * c_t
                    if 0 <= r < hh:
                        loads.append(isa.Load(buf="inp", sram_addr=dst,
                                              dram_addr=ctx.addr(x, ((b * hh + r) * ww) * c + c0),
                                              rows=ww, cols=cc, dram_stride=c, pad_top=pl,
                                              pad_bottom=pr, pad_right=c_t - cc,
                                              sram_stride=c_t))
                    else:
                        loads.append(isa.Load(buf="inp", sram_addr=dst, dram_addr=zero_addr,
                                              rows=1, cols=wp * c_t))
                gemm = isa.Gemm(inp_addr=sp.in_addr[slot], in_h=in1 - in0, in_w=wp, in_c=c_t,
                                kh=kh, kw=kw, stride=sh, dilation=dil, w_addr=sp.w_addr[t % 2],
                                n=c_t, acc_addr=sp.acc_addr[slot], x_signed=L.x_signed)
                req = isa.Requant(src_addr=sp.acc_addr[slot], rows=rr * ow, cols=cc,
                                  src_stride=c_t, bias_addr=taddr["bias"],
                                  mult_addr=taddr["mult"], shift_addr=taddr["shift"], lo=L.lo,
                                  hi=L.hi, dst_addr=sp.out_addr[slot],
                                  **ctx.or_fields(y.name, b, c0, r0 == 0))
                st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                               dram_addr=ctx.addr(y, ((b * oh + r0) * ow) * c + c0),
                               rows=rr * ow, cols=cc, dram_stride=c)
                pipe.tile(load=loads, compute=[gemm], vector=[req], store=[st])
                i += 1
    pipe.close()


def lower_matmul(ctx, name, d, a, b, y, b_is_nk):
    """Attention matmul ``a @ b`` of two activations (8-bit), one slice per leading index.

    ``b`` is [..., K, N] ("kn" weights) or, when the graph transposed a contiguous tensor,
    that tensor [..., N, K] ("nk")."""
    q = d["q"]
    if b.signed is False:
        raise CompileError(f"node '{name}' ({d['source']}): the right operand of an activation "
                           "matmul must be signed to sit in the weight buffer")
    t_rows, k = a.shape[-2], a.shape[-1]
    n = y.shape[-1]
    lead = int(np.prod(a.shape[:-2]))
    mult = ctx.table(f"{name}:mult", np.full(n, q.consts["m"], dtype=np.int32))
    shift = ctx.table(f"{name}:shift", np.full(n, q.consts["s"], dtype=np.int32))
    rows_for = lambda r: r * k  # noqa: E731
    n_t, rows_t = choose_tiles(ctx, name, n, k, rows_for, 1, t_rows, 2, 0, n)
    if n_t != n:
        raise TilingError(f"layer '{name}': the right operand ({k}x{n}) does not fit a 'wgt' slot")
    sp = ctx.sram
    pipe = ctx.em.pipeline(name, ("load", "compute", "vector", "store"))
    i = 0
    for sl in range(lead):
        for r0 in range(0, t_rows, rows_t):
            rr = min(rows_t, t_rows - r0)
            slot = i % 2
            loads = []
            if r0 == 0:
                loads.append(isa.Load(buf="wgt", sram_addr=sp.w_addr[sl % 2],
                                      dram_addr=ctx.addr(b, sl * k * n), rows=1, cols=k * n))
                loads.append(isa.Load(buf="param", sram_addr=sp.t_addr[sl % 2], dram_addr=mult,
                                      rows=1, cols=n))
                loads.append(isa.Load(buf="param", sram_addr=sp.t_addr[sl % 2] + n,
                                      dram_addr=shift, rows=1, cols=n))
            loads.append(isa.Load(buf="inp", sram_addr=sp.in_addr[slot],
                                  dram_addr=ctx.addr(a, (sl * t_rows + r0) * k), rows=rr, cols=k))
            gemm = isa.Gemm(inp_addr=sp.in_addr[slot], in_h=rr, in_w=1, in_c=k,
                            w_addr=sp.w_addr[sl % 2], w_layout="nk" if b_is_nk else "kn", n=n,
                            acc_addr=sp.acc_addr[slot], x_signed=a.signed)
            req = isa.Requant(src_addr=sp.acc_addr[slot], rows=rr, cols=n,
                              mult_addr=sp.t_addr[sl % 2], shift_addr=sp.t_addr[sl % 2] + n,
                              lo=q.lo, hi=q.hi, dst_addr=sp.out_addr[slot],
                              **ctx.or_fields(y.name, 0, 0, r0 == 0))
            st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                           dram_addr=ctx.addr(y, (sl * t_rows + r0) * n), rows=rr, cols=n)
            pipe.tile(load=loads, compute=[gemm], vector=[req], store=[st])
            i += 1
    pipe.close()
