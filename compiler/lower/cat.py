"""Lowering of ``torch.cat``: the output starts as a DRAM image holding the constant parts
(quantized at the cat's scale); each activation part is requantized to the cat's scale
and stored at its place."""

from __future__ import annotations

import numpy as np

from npu_sim import isa
from quant.rounding import quantize_float, quantize_multiplier

from ..errors import CompileError
from ..memory import Tensor, to_phys
from .op_args import cat_args
from .rowwise import band_rows


def lower_cat_part(ctx, name, k, x, y, q, dst_off):
    """Requantize input ``x`` to the cat's scale and store it at its place in ``y``.

    ``dst_off[r]``: element offset in ``y`` of row ``r`` of x's [rows, C] view (the C
    channels of a row land contiguously). Bands follow runs of constant row stride."""
    m, s = quantize_multiplier(x.scale / q.scale)
    c = x.channels
    mult = ctx.table(f"{name}.{k}:mult", np.full(c, m, dtype=np.int32))
    shift = ctx.table(f"{name}.{k}:shift", np.full(c, s, dtype=np.int32))
    r_t = band_rows(ctx, name, 1, c, x.rows, 2 * c)
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


def lower_cat_node(ctx, name, d):
    q = d["q"]
    shape = d["shape"]
    parts, dim = cat_args(d["fx"], len(shape))
    # initial DRAM image: constant parts quantized at the cat's scale
    init = np.zeros(shape, dtype=np.int64)
    y_index = np.arange(int(np.prod(shape))).reshape(shape)
    off = 0
    acts = []
    for p in parts:
        v = ctx.env[ctx.src(name, p.name)]
        size = (v.shape if isinstance(v, (np.ndarray, Tensor)) else tuple(v.index.shape))[dim]
        sl = [slice(None)] * len(shape)
        sl[dim] = slice(off, off + size)
        if isinstance(v, np.ndarray):
            init[tuple(sl)] = quantize_float(v, q.scale, q.signed)
        else:
            acts.append((p.name, y_index[tuple(sl)]))
        off += size
    fmap = bool(d.get("fmap"))
    y = ctx.new_tensor(name, shape, q.signed, q.scale, None, init=to_phys(init, None, fmap))
    phys_pos = to_phys(y_index, None, fmap).reshape(-1)
    where = np.empty_like(phys_pos)
    where[phys_pos] = np.arange(phys_pos.size)  # logical flat -> physical flat
    for k, (pname, logical_idx) in enumerate(acts):
        x = ctx.read(name, pname)
        dst = where[to_phys(logical_idx, x.perm, x.fmap).reshape(x.rows, x.channels)]
        if x.channels > 1 and not np.all(np.diff(dst, axis=1) == 1):
            raise CompileError(f"cat at '{name}' ({d['source']}): this concatenation "
                               "does not keep channels contiguous")
        lower_cat_part(ctx, name, k, x, y, q, dst[:, 0])
    ctx.env[name] = y
