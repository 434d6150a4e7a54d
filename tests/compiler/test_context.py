"""compiler/lower/context.py: mask tiles and OR fields, and reading a node's input."""

from types import SimpleNamespace

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

import compiler
import quant
from compiler.lower.context import LoweringContext
from npu_sim import NPUConfig, Program


def _ctx():
    cfg = NPUConfig()
    return LoweringContext(Program(config=cfg.to_dict()), cfg,
                           SimpleNamespace(config=quant.QuantConfig()), nx.DiGraph(batch=1), 64)


@given(g=st.integers(1, 96), width=st.integers(1, 200))
def test_mask_tiles_start_every_group(g, width):
    ctx = _ctx()
    ctx.alloc_masks("t", 1, 4, g)
    w = ctx.mask_tile("t", width)
    assert 1 <= w <= width
    assert w % g == 0 or g % w == 0
    # the widest such tile: nothing between w and width qualifies
    assert not any(v % g == 0 or g % v == 0 for v in range(w + 1, width + 1))
    assert ctx.mask_tile("other", width) == width  # no masks: any width


def test_or_fields_reset_only_where_a_group_starts():
    ctx = _ctx()
    ctx.alloc_masks("t", 2, 3, 16)
    assert ctx.or_fields("u", 0, 0, True) == {}
    f = ctx.or_fields("t", 1, 32, True)
    assert f == {"or_addr": ctx.mask_addr("t", 1), "or_group": 16, "or_ch0": 32,
                 "or_reset": True}
    assert ctx.mask_addr("t", 1) == ctx.mask_addr("t", 0) + 3
    assert not ctx.or_fields("t", 0, 8, True)["or_reset"]  # inside a group
    assert not ctx.or_fields("t", 0, 16, False)["or_reset"]  # not the first band


def test_a_view_is_materialized_once_and_cached(make_qmodel, monkeypatch):
    """Readers of one layout view share one materialization (``env`` keeps the tensor)."""
    import compiler.lower.context as context

    calls = []
    real = context.reorder.materialize_view
    monkeypatch.setattr(context.reorder, "materialize_view",
                        lambda ctx, src, v, any_order=False: calls.append(src)
                        or real(ctx, src, v, any_order))
    qm, x = make_qmodel("vit")
    compiler.compile(qm, x[:1])
    assert calls and len(calls) == len(set(calls))
