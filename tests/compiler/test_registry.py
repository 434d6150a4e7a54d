"""compiler/lower/registry.py and the driver (compiler/compile.py): every node is lowered
once, in order, by the function the table has for its kind."""

import sys

import pytest

import compiler
import quant
from compiler.compile import lowering_order
from compiler.lower import registry


@pytest.mark.parametrize("kind", ["conv", "vit"])
def test_every_node_lowered_once_in_order(make_qmodel, monkeypatch, kind):
    qm, x = make_qmodel(kind)
    calls = []

    def counted(fn):
        def lower(ctx, n, d):
            calls.append(n)
            return fn(ctx, n, d)
        return lower

    table = {k: counted(fn) for k, fn in registry.LOWERINGS.items()}
    monkeypatch.setattr(sys.modules["compiler.compile"], "LOWERINGS", table)
    g = compiler.build_graph(qm, x[:1])
    compiler.compile(qm, x[:1], graph=g)
    assert calls == lowering_order(g, qm.gm.graph)
    assert sorted(calls) == sorted(g.nodes)


def test_a_kind_without_lowering_is_refused_naming_the_node(make_qmodel):
    qm, x = make_qmodel("conv")
    g = compiler.build_graph(qm, x[:1])
    g.nodes["c3"]["kind"] = "sigmoid"
    with pytest.raises(quant.UnsupportedOpError, match="cannot lower op 'sigmoid' at node 'c3'"):
        compiler.compile(qm, x[:1], graph=g)
