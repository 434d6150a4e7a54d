"""Lowering of the vector-unit ops: residual add, ReLU clamps, REORDER, LayerNorm,
softmax, GELU (row-wise over a [rows, channels] view), pooling and means, cat.

Each op streams bands of rows: DMA in (one block per input), one vector instruction,
DMA out, double buffered like the GEMMs.
"""

from __future__ import annotations

import numpy as np

from npu_sim import isa
from quant import int_ops
from quant.rounding import quantize_float, quantize_multiplier

from ..errors import TilingError
from ..memory import to_phys
from ..tables import float_bits


def _band(ctx, name, n_in, cols, rows, extra_table=0):
    sp = ctx.sram
    r_in = sp.in_slot // max(n_in * cols, 1)
    r_out = sp.out_slot // max(cols, 1)
    r = min(r_in, r_out, rows)
    if r < 1:
        raise TilingError(f"layer '{name}': one row of {cols} channels does not fit the 'inp' "
                          f"buffer slots ({sp.in_slot} / {sp.out_slot} bytes)")
    if extra_table > sp.t_slot:
        raise TilingError(f"layer '{name}': its table of {extra_table} entries exceeds a "
                          f"'param' slot ({sp.t_slot})")
    return r


def lower_rowwise(ctx, name, srcs, y, make, tables=()):
    """Generic band loop. ``srcs``: Tensors (or const region names) read as [rows, C];
    ``make(src_addrs, dst_addr, rows, cols, table_addrs, or_fields)`` -> vector instruction;
    ``tables``: [(dram_addr, entries)] loaded into the param slot each band."""
    cols = y.channels
    rows = y.rows
    per_image = y.name in ctx.mask_group
    bsz = y.shape[0] if per_image else 1
    rows_img = rows // bsz
    r_t = _band(ctx, name, len(srcs), cols, rows_img, sum(n for _, n in tables))
    sp = ctx.sram
    pipe = ctx.em.pipeline(name, ("load", "vector", "store"))
    i = 0
    for b in range(bsz):
        for r0 in range(0, rows_img, r_t):
            rr = min(r_t, rows_img - r0)
            row = b * rows_img + r0
            slot = i % 2
            loads, addrs = [], []
            for k, s in enumerate(srcs):
                a = sp.in_addr[slot] + k * rr * cols
                base = ctx.program.addr(s) if isinstance(s, str) else ctx.program.addr(s.region)
                loads.append(isa.Load(buf="inp", sram_addr=a, dram_addr=base + row * cols,
                                      rows=rr, cols=cols))
                addrs.append(a)
            t_addrs, ta = [], sp.t_addr[slot]
            for dram, n in tables:
                loads.append(isa.Load(buf="param", sram_addr=ta, dram_addr=dram, rows=1, cols=n))
                t_addrs.append(ta)
                ta += n
            ins = make(addrs, sp.out_addr[slot], rr, cols, t_addrs,
                       ctx.or_fields(y.name, b, 0, r0 == 0))
            st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                           dram_addr=ctx.program.addr(y.region) + row * cols, rows=rr, cols=cols)
            pipe.tile(load=loads, vector=[ins], store=[st])
            i += 1
    pipe.close()


def const_region(ctx, name, value, shape, signed_scale=None, perm=None, fmap=False):
    """Quantize a float constant like the runtime does and store it broadcast to ``shape``.

    ``signed_scale`` (scale, signed) forces the output quantization (cat); otherwise the
    constant's own range picks it (add operand). Returns (region name, scale, signed)."""
    v = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    if signed_scale is None:
        sc, sg = int_ops.act_scale(float(np.min(value)), float(np.max(value)))
    else:
        sc, sg = signed_scale
    codes = to_phys(quantize_float(v, sc, sg), perm, fmap)
    region = f"c:{name}"
    ctx.program.add_region(region, codes.astype("int8" if sg else "uint8"))
    return region, sc, sg


def lower_add(ctx, name, d, operands, y, sign=1):
    q = d["q"]
    srcs, scales = [], []
    for k, op in enumerate(operands):
        if isinstance(op, np.ndarray):  # a constant operand (e.g. a position embedding)
            region, sc, _ = const_region(ctx, f"{name}.{k}", op, y.shape, perm=y.perm, fmap=y.fmap)
            srcs.append(region)
            scales.append(sc)
        else:
            srcs.append(op)
            scales.append(op.scale)
    ma, mb, s = int_ops.two_input_multipliers(scales[0], scales[1], q.scale)

    def make(a, dst, rows, cols, _t, orf):
        return isa.Add(a_addr=a[0], b_addr=a[1], ma=ma, mb=sign * mb, s=s, lo=q.lo, hi=q.hi,
                       dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, srcs, y, make)


def lower_clamp(ctx, name, x, y, lo, hi):
    def make(a, dst, rows, cols, _t, orf):
        return isa.Clamp(src_addr=a[0], lo=lo, hi=hi, dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make)


def lower_reorder(ctx, name, x, y):
    c = x.channels
    src = x.perm if x.perm is not None else np.arange(c)
    dst = y.perm if y.perm is not None else np.arange(c)
    inv = np.argsort(src)
    idx = inv[dst]  # memory position in x of each memory channel of y
    t = ctx.table(f"{name}:perm", idx.astype(np.int32))

    def make(a, d_addr, rows, cols, ta, orf):
        return isa.Reorder(src_addr=a[0], perm_addr=ta[0], dst_addr=d_addr, rows=rows,
                           cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make, tables=[(t, c)])


def lower_layernorm(ctx, name, d, x, y):
    q = d["q"]
    c = x.channels
    gamma = ctx.table(f"{name}:gamma", float_bits(q.consts["gamma"]))
    beta = ctx.table(f"{name}:beta", float_bits(q.consts["beta"]))

    def make(a, dst, rows, cols, ta, orf):
        return isa.LayerNorm(src_addr=a[0], gamma_addr=ta[0], beta_addr=ta[1],
                             eps=q.consts["eps"], in_scale=x.scale, out_scale=q.scale,
                             out_signed=q.signed, dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make, tables=[(gamma, c), (beta, c)])


def lower_float_op(ctx, name, d, x, y, kind):
    q = d["q"]
    cls = {"softmax": isa.Softmax, "gelu": isa.Gelu}[kind]

    def make(a, dst, rows, cols, _t, orf):
        return cls(src_addr=a[0], in_scale=x.scale, out_scale=q.scale, out_signed=q.signed,
                   dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make)


def lower_pool(ctx, name, x, y, *, kind, kh, kw, stride, pad, m=1, s=0, lo=-128, hi=127):
    """Max/avg pool of a [B, H, W, C] (or [B, T, C] as H=T, W=1) tensor, channel tiles."""
    bsz = x.shape[0]
    ph = x.phys
    h, w = (ph[1], ph[2]) if len(ph) == 4 else (ph[1], 1)
    c = x.channels
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w + 2 * pad - kw) // stride + 1
    sp = ctx.sram
    c_t = ctx.mask_tile(y.name, min(c, sp.in_slot // (h * w), sp.out_slot // (oh * ow)))
    if c_t < 1:
        raise TilingError(f"layer '{name}': a {h}x{w} plane does not fit the 'inp' buffer "
                          f"slot ({sp.in_slot} bytes)")
    pipe = ctx.em.pipeline(name, ("load", "vector", "store"))
    i = 0
    for b in range(bsz):
        for c0 in range(0, c, c_t):
            cc = min(c_t, c - c0)
            slot = i % 2
            ld = isa.Load(buf="inp", sram_addr=sp.in_addr[slot],
                          dram_addr=ctx.addr(x, b * h * w * c + c0), rows=h * w, cols=cc,
                          dram_stride=c)
            pool = isa.Pool(kind=kind, src_addr=sp.in_addr[slot], dst_addr=sp.out_addr[slot],
                            h=h, w=w, c=cc, kh=kh, kw=kw, stride=stride, pad=pad, m=m, s=s,
                            lo=lo, hi=hi, **ctx.or_fields(y.name, b, c0, True))
            st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                           dram_addr=ctx.addr(y, b * oh * ow * c + c0), rows=oh * ow, cols=cc,
                           dram_stride=c)
            pipe.tile(load=[ld], vector=[pool], store=[st])
            i += 1
    pipe.close()


def mean_tables(x_scale, count, q):
    m, s = quantize_multiplier(x_scale / (count * q.scale))
    return m, s


def lower_cat_part(ctx, name, k, x, y, q, dst_off):
    """Requantize input ``x`` to the cat's scale and store it at its place in ``y``.

    ``dst_off[r]``: element offset in ``y`` of row ``r`` of x's [rows, C] view (the C
    channels of a row land contiguously). Bands follow runs of constant row stride."""
    m, s = quantize_multiplier(x.scale / q.scale)
    c = x.channels
    mult = ctx.table(f"{name}.{k}:mult", np.full(c, m, dtype=np.int32))
    shift = ctx.table(f"{name}.{k}:shift", np.full(c, s, dtype=np.int32))
    r_t = _band(ctx, name, 1, c, x.rows, 2 * c)
    sp = ctx.sram
    pipe = ctx.em.pipeline(name, ("load", "vector", "store"))
    rows = x.rows
    i = r0 = 0
    while r0 < rows:
        rr = min(r_t, rows - r0)
        stride = int(dst_off[r0 + 1] - dst_off[r0]) if rr > 1 else c
        steps = np.diff(dst_off[r0:r0 + rr])
        bad = np.flatnonzero(steps != stride)
        if bad.size:
            rr = int(bad[0]) + 1
        if rr == 1:
            stride = c
        slot = i % 2
        lds = [isa.Load(buf="inp", sram_addr=sp.in_addr[slot], dram_addr=ctx.addr(x, r0 * c),
                        rows=rr, cols=c),
               isa.Load(buf="param", sram_addr=sp.t_addr[slot], dram_addr=mult, rows=1, cols=c),
               isa.Load(buf="param", sram_addr=sp.t_addr[slot] + c, dram_addr=shift, rows=1,
                        cols=c)]
        req = isa.Requant(src_buf="inp", src_addr=sp.in_addr[slot], rows=rr, cols=c,
                          mult_addr=sp.t_addr[slot], shift_addr=sp.t_addr[slot] + c, lo=q.lo,
                          hi=q.hi, dst_addr=sp.out_addr[slot])
        st = isa.Store(buf="inp", sram_addr=sp.out_addr[slot],
                       dram_addr=ctx.addr(y, int(dst_off[r0])), rows=rr, cols=c,
                       dram_stride=stride)
        pipe.tile(load=lds, vector=[req], store=[st])
        i += 1
        r0 += rr
    pipe.close()
