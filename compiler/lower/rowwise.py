"""The band loop of the vector-unit ops: a tensor as a [rows, channels] view, cut into
bands of rows that fit the ``inp`` slots; per band DMA in (one block per input), one
vector instruction, DMA out, double buffered like the GEMMs."""

from __future__ import annotations

from npu_sim import isa

from ..errors import TilingError


def band_rows(ctx, name, n_in, cols, rows, extra_table=0):
    """Rows per band for ``n_in`` inputs of ``cols`` channels (at most ``rows``), checking
    that a table of ``extra_table`` entries fits a ``param`` slot."""
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
    r_t = band_rows(ctx, name, len(srcs), cols, rows_img, sum(n for _, n in tables))
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
