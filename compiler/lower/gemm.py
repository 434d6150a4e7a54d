"""Lowering of conv / Linear / depthwise conv / attention matmul onto the PE array.

A layer is cut into tiles: weight tiles (``n_t`` output channels whose weights fit one
weight-buffer slot; for a matmul, one slice of the right operand) and, inside each,
bands of output rows (whose input rows, int32 accumulators and output codes fit their
slots). Per tile: DMA the input band (with zero padding), the weights and tables once per
weight tile, one GEMM instruction, one REQUANT (bias + dyadic requantize + fused ReLU
clamp), one DMA store. That loop, for all three, is
``emit_gemm_tiles`` (compiler/lower/gemm_tiles.py).
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
    weight_shift_table,
    weights_nk,
)
from .gemm_tiles import GemmTables, choose_tiles, emit_gemm_tiles, spans
from .masks import prepare_masks
from .op_args import matmul_operands, transposed_last_two

#: channel-tile step of a dense GEMM that writes OR masks: tiles start on mask groups
#: (``lcm`` with G), and a multiple of 64 keeps the array's column tiles whole for the
#: usual G of 16, 32 and 64
MASK_WRITER_STEP = 64


def _pair(v, what, name):
    a, b = pair(v)
    if a != b:
        raise CompileError(f"layer '{name}': non-square {what} {v} is not supported by the NPU")
    return int(a)


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


# ---------------------------------------------------------------- the lowerings
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
    tabs = GemmTables(ctx, name, L.bias[p_out], L.m[p_out], L.s[p_out], ng, ws, xs)
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
    # OR-mask writers: output-channel tiles start on mask groups
    step = (math.lcm(MASK_WRITER_STEP, ctx.mask_group[y.name]) if y.name in ctx.mask_group
            else ctx.cfg.cols)
    n_t, rows_t = choose_tiles(ctx, name, n, kh * kw * c, rows_for, out_w, out_rows,
                               tabs.per_n(), tabs.fixed(), step)
    n_tiles = spans(n, n_t)
    bands = [(img, r0, rr) for img in images for r0, rr in spans(out_rows, rows_t)]

    def tile(nt, band, sl, first):
        n0, nn = n_tiles[nt]
        (b, mask_img), r0, rr = band
        loads = []
        if first:
            loads.append(isa.Load(buf="wgt", sram_addr=sl.wgt,
                                  dram_addr=w_addr_dram + n0 * kh * kw * c,
                                  rows=nn, cols=kh * kw * c))
        tl, taddr = tabs.loads(sl.param, n0, nn)
        if first:
            loads += tl
        if L.kind == "conv":
            in0 = r0 * sh - pad
            in1 = (r0 + rr - 1) * sh - pad + eff
            lo, hi = max(in0, 0), min(in1, hh)
            loads.append(isa.Load(buf="inp", sram_addr=sl.inp,
                                  dram_addr=ctx.addr(x, ((b * hh + lo) * ww) * c),
                                  rows=hi - lo, cols=ww * c, pad_top=lo - in0,
                                  pad_bottom=in1 - hi, pad_left=pl * c, pad_right=pr * c))
            in_h, in_w = in1 - in0, wp
            out_off = ((b * oh + r0) * ow) * n + n0
            m_rows = rr * ow
        else:
            base_row = (b * per if mask_img is not None else 0) + r0
            loads.append(isa.Load(buf="inp", sram_addr=sl.inp,
                                  dram_addr=ctx.addr(x, base_row * c), rows=rr, cols=c))
            in_h, in_w = rr, 1
            out_off = base_row * n + n0
            m_rows = rr
        xs_addr = -1
        if four and qcfg.dynamic:
            xs_addr = ctx.mask_addr(x.name, b if mask_img is not None else 0)
        elif four:
            xs_addr = taddr["xs"]
        gemm = isa.Gemm(inp_addr=sl.inp, in_h=in_h, in_w=in_w, in_c=c, kh=kh, kw=kw,
                        stride=sh, dilation=dil, w_addr=sl.wgt, n=nn, acc_addr=sl.acc,
                        xs_addr=xs_addr, ws_addr=taddr.get("ws", -1) if four else -1, **common)
        req = isa.Requant(src_addr=sl.acc, rows=m_rows, cols=nn, bias_addr=taddr["bias"],
                          mult_addr=taddr["mult"], shift_addr=taddr["shift"], lo=L.lo,
                          hi=L.hi, dst_addr=sl.out, **ctx.or_fields(y.name, b, n0, r0 == 0))
        st = isa.Store(buf="inp", sram_addr=sl.out, dram_addr=ctx.addr(y, out_off),
                       rows=m_rows, cols=nn, dram_stride=n)
        return loads, gemm, req, st

    emit_gemm_tiles(ctx, name, len(n_tiles), bands, tile)


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
    c_tiles = spans(c, c_t)
    blk = np.zeros((len(c_tiles), c_t, kh, kw, c_t), dtype=np.int64)
    for t, (c0, cc) in enumerate(c_tiles):
        for j in range(cc):
            blk[t, j, :, :, j] = wk[c0 + j]
    wname = f"{name}:weights"
    ctx.table(wname, blk.reshape(len(c_tiles) * c_t, -1), dtype="int8")
    w_dram = ctx.program.addr(wname)
    tabs = GemmTables(ctx, name, L.bias[perm], L.m[perm], L.s[perm])
    zero = f"{name}:zeros"
    ctx.table(zero, np.zeros(wp * c_t, dtype=np.int8), dtype="int8")
    zero_addr = ctx.program.addr(zero)
    wsz = c_t * kh * kw * c_t
    rows_for = lambda r: ((r - 1) * sh + eff) * wp * c_t  # noqa: E731
    _, rows_t = choose_tiles(ctx, name, c_t, kh * kw * c_t, rows_for, ow, oh, 3, 0, c_t)
    bands = [(b, r0, rr) for b in range(bsz) for r0, rr in spans(oh, rows_t)]

    def tile(t, band, sl, first):
        c0, cc = c_tiles[t]
        b, r0, rr = band
        loads = []
        if first:
            loads.append(isa.Load(buf="wgt", sram_addr=sl.wgt, dram_addr=w_dram + t * wsz,
                                  rows=c_t, cols=kh * kw * c_t))
            tl, taddr = tabs.loads(sl.param, c0, cc)
            loads += tl
        else:
            _, taddr = tabs.loads(sl.param, c0, cc)
        in0 = r0 * sh - pad
        in1 = (r0 + rr - 1) * sh - pad + eff
        for j, r in enumerate(range(in0, in1)):
            dst = sl.inp + j * wp * c_t
            if 0 <= r < hh:
                loads.append(isa.Load(buf="inp", sram_addr=dst,
                                      dram_addr=ctx.addr(x, ((b * hh + r) * ww) * c + c0),
                                      rows=ww, cols=cc, dram_stride=c, pad_top=pl,
                                      pad_bottom=pr, pad_right=c_t - cc, sram_stride=c_t))
            else:
                loads.append(isa.Load(buf="inp", sram_addr=dst, dram_addr=zero_addr,
                                      rows=1, cols=wp * c_t))
        gemm = isa.Gemm(inp_addr=sl.inp, in_h=in1 - in0, in_w=wp, in_c=c_t, kh=kh, kw=kw,
                        stride=sh, dilation=dil, w_addr=sl.wgt, n=c_t, acc_addr=sl.acc,
                        x_signed=L.x_signed)
        req = isa.Requant(src_addr=sl.acc, rows=rr * ow, cols=cc, src_stride=c_t,
                          bias_addr=taddr["bias"], mult_addr=taddr["mult"],
                          shift_addr=taddr["shift"], lo=L.lo, hi=L.hi, dst_addr=sl.out,
                          **ctx.or_fields(y.name, b, c0, r0 == 0))
        st = isa.Store(buf="inp", sram_addr=sl.out,
                       dram_addr=ctx.addr(y, ((b * oh + r0) * ow) * c + c0),
                       rows=rr * ow, cols=cc, dram_stride=c)
        return loads, gemm, req, st

    emit_gemm_tiles(ctx, name, len(c_tiles), bands, tile)


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

    def tile(s, band, sl, first):
        r0, rr = band
        loads = []
        if first:
            loads.append(isa.Load(buf="wgt", sram_addr=sl.wgt,
                                  dram_addr=ctx.addr(b, s * k * n), rows=1, cols=k * n))
            loads.append(isa.Load(buf="param", sram_addr=sl.param, dram_addr=mult,
                                  rows=1, cols=n))
            loads.append(isa.Load(buf="param", sram_addr=sl.param + n,
                                  dram_addr=shift, rows=1, cols=n))
        loads.append(isa.Load(buf="inp", sram_addr=sl.inp,
                              dram_addr=ctx.addr(a, (s * t_rows + r0) * k), rows=rr, cols=k))
        gemm = isa.Gemm(inp_addr=sl.inp, in_h=rr, in_w=1, in_c=k, w_addr=sl.wgt,
                        w_layout="nk" if b_is_nk else "kn", n=n, acc_addr=sl.acc,
                        x_signed=a.signed)
        req = isa.Requant(src_addr=sl.acc, rows=rr, cols=n, mult_addr=sl.param,
                          shift_addr=sl.param + n, lo=q.lo, hi=q.hi, dst_addr=sl.out,
                          **ctx.or_fields(y.name, 0, 0, r0 == 0))
        st = isa.Store(buf="inp", sram_addr=sl.out,
                       dram_addr=ctx.addr(y, (s * t_rows + r0) * n), rows=rr, cols=n)
        return loads, gemm, req, st

    emit_gemm_tiles(ctx, name, lead, spans(t_rows, rows_t), tile)


# ---------------------------------------------------------------- nodes
def lower_conv_node(ctx, name, d):
    """A conv or Linear node: dense GEMM, or depthwise conv."""
    L = d["layer"]
    src = ctx.first_input(name)
    extra = ctx.pads.get(ctx.src(name, src), (0, 0, 0, 0))
    x = ctx.read(name, src, any_order=not L.eligible)
    if L.groups != 1:
        if not (L.groups == L.in_channels == L.out_channels):
            raise CompileError(f"layer '{name}': grouped conv with {L.groups} groups is not "
                               "supported (only dense and depthwise)")
        y = ctx.new(name, perm=d.get("perm"))
        lower_depthwise(ctx, name, d, x, y, extra)
    else:
        if ctx.qcfg.dynamic and L.eligible:
            x = prepare_masks(ctx, name, x, L)
        y = ctx.new(name)
        lower_dense(ctx, name, d, x, y, extra)
    ctx.env[name] = y


def lower_matmul_node(ctx, name, d):
    """``a @ b``; when ``b`` is a transpose of the last two axes, its input is read as
    "nk" weights instead (the transpose is never materialized)."""
    a_node, b_node = matmul_operands(d["fx"])
    a = ctx.read(name, a_node.name)
    b_src = ctx.src(name, b_node.name)
    bd = ctx.g.nodes[b_src]
    inner = transposed_last_two(bd["fx"]) if bd["kind"] == "layout" else None
    nk = inner is not None
    b = ctx.read(b_src, inner.name) if nk else ctx.read(name, b_node.name)
    y = ctx.new(name, perm=None)
    lower_matmul(ctx, name, d, a, b, y, nk)
    ctx.env[name] = y
