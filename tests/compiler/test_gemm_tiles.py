"""compiler/lower/gemm_tiles.py: tile sizes, the tables' slot layout and the one tile
loop that dense, depthwise and matmul lowerings share."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

import compiler
import quant
from compiler.lower.gemm_tiles import Slots, choose_tiles, emit_gemm_tiles, spans
from compiler.memory import SramPlan
from compiler.schedule import OpEmitter
from npu_sim import NPUConfig, Program, isa


@given(total=st.integers(0, 300), step=st.integers(1, 80))
def test_spans_cover_the_range_once_with_one_short_edge(total, step):
    sp = spans(total, step)
    covered = [i for a, n in sp for i in range(a, a + n)]
    assert covered == list(range(total))
    assert all(n == step for _, n in sp[:-1])
    if sp:
        assert 1 <= sp[-1][1] <= step and (sp[-1][1] == step) == (total % step == 0)


def _ctx(cfg=None):
    cfg = cfg or NPUConfig()
    prog = Program(config=cfg.to_dict())
    return SimpleNamespace(sram=SramPlan(cfg, 0), em=OpEmitter(prog), program=prog)


def test_tile_loop_alternates_slots_and_loads_weights_once_per_tile():
    ctx = _ctx()
    sp = ctx.sram
    seen = []

    def tile(t, band, slots, first):
        seen.append((t, band, slots, first))
        return ([isa.Nop(on="load")], isa.Nop(on="compute"), isa.Nop(on="vector"),
                isa.Nop(on="store"))

    bands = ["b0", "b1", "b2"]
    emit_gemm_tiles(ctx, "L", 3, bands, tile)
    assert [(t, b) for t, b, _, _ in seen] == [(t, b) for t in range(3) for b in bands]
    for i, (t, _, slots, first) in enumerate(seen):
        assert slots == Slots(sp.in_addr[i % 2], sp.acc_addr[i % 2], sp.out_addr[i % 2],
                              sp.w_addr[t % 2], sp.t_addr[t % 2])
        assert first == (i % len(bands) == 0)
    # every tile's four stages were emitted, then the pipeline drained its tokens
    assert sum(1 for ins in ctx.program.instructions if ins.layer == 0) > 4 * 9


def test_choose_tiles_fits_every_slot():
    cfg = NPUConfig(inp_kib=64, acc_kib=32, wgt_kib=64, param_kib=4)
    ctx = _ctx(cfg)
    sp = ctx.sram
    n, w_per_n, out_w = 100, 288, 12
    rows_for = lambda r: (r + 2) * 14 * 32  # noqa: E731  (3x3 conv, 32 input channels)
    n_t, rows_t = choose_tiles(ctx, "L", n, w_per_n, rows_for, out_w, 12, 3, 0, 32)
    assert n_t % 32 == 0 and n_t * w_per_n <= sp.w_slot
    assert 3 * n_t <= sp.t_slot
    assert rows_for(rows_t) <= sp.in_slot and rows_t * out_w * n_t <= sp.acc_slot
    # the largest band that fits: one more row would not
    assert (rows_for(rows_t + 1) > sp.in_slot or (rows_t + 1) * out_w * n_t > sp.acc_slot
            or (rows_t + 1) * out_w * n_t > sp.out_slot)


@pytest.mark.parametrize("what,args,match", [
    ("weights", dict(w_per_n=10**6), r"'wgt' buffer slot"),
    ("tables", dict(table_per_n=10**5), r"'param' buffer slot"),
    ("row", dict(rows_for=lambda r: 10**7), r"'inp' buffer slot"),
])
def test_choose_tiles_names_the_buffer_that_is_too_small(what, args, match):
    kw = dict(n=64, w_per_n=32, rows_for=lambda r: r * 32, out_w=1, band_rows_max=8,
              table_per_n=3, table_fixed=0, step=32)
    kw.update(args)
    with pytest.raises(compiler.TilingError, match=match):
        choose_tiles(_ctx(), "L", **kw)


def test_untileable_layer_names_layer_and_buffer():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)).eval()
    x = torch.randn(2, 3, 16, 16)
    qm = quant.quantize(m, [x], progress=False)
    with pytest.raises(compiler.TilingError, match=r"layer '.*'.*'(inp|wgt|acc)'"):
        compiler.compile(qm, x[:1], config=NPUConfig(inp_kib=1, wgt_kib=1, acc_kib=1))
