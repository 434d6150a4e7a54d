"""compiler/reorder.py: REORDER insertion, the read-time choice for a layout view, and
REORDER emission. Each choice is run on the simulator and must give the view's codes in
the channel order the reader gets."""

from types import SimpleNamespace

import networkx as nx
import numpy as np
import pytest
import torch

import npu_sim
import quant
from compiler.lower.context import LoweringContext
from compiler.lower.views import IndexMap, base_map
from compiler.memory import Tensor, from_phys, to_phys
from compiler.reorder import insert_reorders, materialize_view, reorder_stats
from compiler.schedule import finish
from npu_sim import NPUConfig, Program, isa

P16 = np.random.default_rng(1).permutation(16)


def _materialize(shape, base_perm, view_op, want, any_order=False):
    """Materialize ``view_op`` of a [shape] input held in ``base_perm`` for a reader that
    wants ``want``; returns (the tensor, the instruction kinds, whether the simulator
    gives the view's codes in the tensor's channel order)."""
    cfg = NPUConfig()
    prog = Program(config=cfg.to_dict())
    base = Tensor("input", "input", shape, True, 0.1, base_perm)
    prog.add_region("input", shape=base.phys, dtype="int8")
    prog.inputs.append("input")
    view = IndexMap(base, view_op(base_map(base).index))
    g = nx.DiGraph(batch=1)
    g.add_node("v", kind="layout", shape=tuple(view.index.shape), signed=True, scale=0.1,
               perm=want, fmap=False, source="test")
    ctx = LoweringContext(prog, cfg, SimpleNamespace(config=quant.QuantConfig()), g, 0)
    y = materialize_view(ctx, "v", view, any_order)
    finish(ctx.em)
    kinds = [type(i) for i in prog.instructions if not isinstance(i, (isa.Nop, isa.Finish))]
    if not kinds:  # an alias: nothing to run
        return y, kinds, y.region == "input" and np.array_equal(
            y.perm if y.perm is not None else np.arange(shape[-1]),
            base_perm if base_perm is not None else np.arange(shape[-1]))
    prog.outputs.append(y.region)
    logical = np.random.default_rng(0).integers(-128, 128, size=shape)
    out = npu_sim.simulate(prog, to_phys(logical, base_perm)).output
    got = from_phys(np.asarray(out).reshape(y.phys), y.perm)
    return y, kinds, np.array_equal(got, view_op(torch.from_numpy(logical)).numpy())


def _same_memory(t):
    return t.reshape(1, 6, 16)


def _transpose(t):
    return t.transpose(1, 2)


def _first_rows(t):
    return t[:, :4]


@pytest.mark.parametrize("case,shape,base_perm,view_op,want,any_order,expect", [
    ("alias", (1, 6, 16), None, _same_memory, None, False, "alias"),
    ("alias_any_order", (1, 6, 16), P16, _same_memory, None, True, "alias"),
    ("alias_then_reorder", (1, 6, 16), P16, _same_memory, None, False, "reorder"),
    ("alias_then_reorder_to_perm", (1, 6, 16), None, _same_memory, P16, False, "reorder"),
    ("gather_logical_then_reorder", (1, 16, 16), None, _transpose, P16, False,
     "gather+reorder"),
    ("gather_in_order", (1, 16, 16), None, _transpose, None, False, "gather"),
    ("gather_straight_into_perm", (1, 6, 16), P16, _first_rows, P16, False, "gather"),
])
def test_read_time_choice(case, shape, base_perm, view_op, want, any_order, expect):
    y, kinds, ok = _materialize(shape, base_perm, view_op, want, any_order)
    assert ok, case
    has_reorder = isa.Reorder in kinds
    if expect == "alias":
        assert not kinds
    elif expect == "reorder":  # alias, then one REORDER pass: two loads (codes, table)
        assert y.region == "t:reorder_v" and kinds.count(isa.Load) == 2 and has_reorder
    elif expect == "gather+reorder":
        assert y.region == "t:reorder_v" and has_reorder and kinds.count(isa.Load) > 2
    else:
        assert y.region == "t:v" and not has_reorder
    if not any_order and expect != "alias":
        assert np.array_equal(y.perm if y.perm is not None else np.arange(shape[-1]),
                              want if want is not None else np.arange(shape[-1]))


def _graph():
    g = nx.DiGraph()
    g.add_node("m", kind="linear", source="s", shape=(2, 8), scale=0.1, signed=True)
    for i, u in enumerate(["u1", "u2", "u3"]):
        g.add_node(u, kind="linear", source="s", shape=(2, 4), scale=0.1, signed=True)
        g.add_edge("m", u, index=i)
    return g


def test_insertion_shares_one_node_per_target_order():
    g = _graph()
    p, q = np.arange(8)[::-1].copy(), np.roll(np.arange(8), 1)
    insert_reorders(g, [("m", "u1", None, p), ("m", "u2", None, p), ("m", "u3", None, q)])
    rs = sorted(n for n, d in g.nodes(data=True) if d["kind"] == "reorder")
    assert rs == ["reorder_m_0", "reorder_m_1"]
    assert g.nodes["u1"]["input_map"] == {"m": "reorder_m_0"} == g.nodes["u2"]["input_map"]
    assert g.nodes["u3"]["input_map"] == {"m": "reorder_m_1"}
    assert not g.has_edge("m", "u1") and g.edges["reorder_m_1", "u3"]["index"] == 2
    assert np.array_equal(g.nodes["reorder_m_0"]["dst_perm"], p)
    assert reorder_stats(g) == {"reorders": 2, "elements": 32}


def test_reorder_nodes_of_a_compiled_model_run_right_after_their_source(make_qmodel):
    import compiler
    from compiler.compile import lowering_order

    qm, x = make_qmodel("vit")
    g = compiler.build_graph(qm, x[:2])
    order = lowering_order(g, qm.gm.graph)
    rs = [n for n in order if g.nodes[n]["kind"] == "reorder"]
    assert rs
    for r in rs:
        src = next(iter(g.predecessors(r)))
        assert order.index(r) > order.index(src)
        assert all(order.index(u) > order.index(r) for u in g.successors(r))
