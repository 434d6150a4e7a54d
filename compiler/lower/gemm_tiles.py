"""The tiling of a GEMM lowering (compiler/lower/gemm.py): how many output channels and
output rows one tile holds (``choose_tiles``), where a layer's tables sit in the
``param`` slot (``GemmTables``), and the double-buffered tile loop that dense,
depthwise and matmul lowerings share (``emit_gemm_tiles``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npu_sim import isa

from ..errors import TilingError
from ..tables import int32_table


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


class GemmTables:
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


def spans(total: int, step: int) -> list:
    """``[(start, size)]`` cutting ``range(total)`` into pieces of ``step`` (the last one
    shorter when ``step`` does not divide ``total``)."""
    return [(a, min(step, total - a)) for a in range(0, total, step)]


@dataclass(frozen=True)
class Slots:
    """SRAM addresses of one tile: its double-buffered input, accumulator and output
    slots, and its weight tile's 'wgt' and 'param' slots."""

    inp: int
    acc: int
    out: int
    wgt: int
    param: int


def emit_gemm_tiles(ctx, name, n_wtiles, bands, tile):
    """The tile loop of every GEMM lowering (dense, depthwise, matmul).

    Weight tile ``t`` (weights and tables in the 'wgt' and 'param' slots ``t % 2``) runs
    over every band of ``bands``, in order; successive tiles alternate the 'inp', 'acc'
    and output slots. ``tile(t, band, slots, first)`` returns the tile's (loads, GEMM,
    REQUANT, STORE); ``first``: the band is its weight tile's first (it loads the weights
    and tables)."""
    sp = ctx.sram
    pipe = ctx.em.pipeline(name, ("load", "compute", "vector", "store"))
    i = 0
    for t in range(n_wtiles):
        for k, band in enumerate(bands):
            slot = i % 2
            slots = Slots(sp.in_addr[slot], sp.acc_addr[slot], sp.out_addr[slot],
                          sp.w_addr[t % 2], sp.t_addr[t % 2])
            loads, gemm, req, st = tile(t, band, slots, k == 0)
            pipe.tile(load=loads, compute=[gemm], vector=[req], store=[st])
            i += 1
    pipe.close()
