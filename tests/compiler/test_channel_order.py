"""compiler/passes/channel_order.py: channel orders per layout class and where REORDERs go."""

import numpy as np
import torch
import torch.nn as nn

import compiler
import npu_sim
import quant
from compiler.ir import build_ir
from compiler.passes.channel_order import assign_channel_orders
from compiler.passes.fmap import assign_fmaps
from compiler.reorder import reorder_stats


def test_gemm_inputs_arrive_in_priority_order(make_qmodel):
    for kind in ("conv", "vit"):
        qm, x = make_qmodel(kind)
        g = assign_channel_orders(assign_fmaps(build_ir(qm, x[:2])))
        for n, d in g.nodes(data=True):
            L = d.get("layer")
            if L is None or not L.eligible or L.groups != 1:
                continue
            src = next(iter(g.predecessors(n)))
            perm = g.nodes[src].get("perm")
            got = np.arange(L.in_channels) if perm is None else perm
            if g.nodes[src]["kind"] == "layout":
                continue  # a gather that the lowering materializes in that order
            assert np.array_equal(got, L.order), n


def test_vit_gets_reorders_after_layernorm(make_qmodel):
    qm, x = make_qmodel("vit")
    g = assign_channel_orders(assign_fmaps(build_ir(qm, x[:2])))
    st = reorder_stats(g)
    assert st["reorders"] >= 2
    kinds = {g.nodes[next(iter(g.predecessors(n)))]["kind"] for n, d in g.nodes(data=True)
             if d["kind"] == "reorder"}
    assert "layernorm" in kinds


class _Branchy(nn.Module):
    """One tensor feeding two GEMMs with different priority orders."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 64)
        self.b = nn.Linear(64, 64)
        self.c = nn.Linear(64, 64)
        self.h = nn.Linear(64, 4)

    def forward(self, x):
        y = torch.relu(self.a(x))
        return self.h(self.b(y) + self.c(y))


def test_shared_tensor_with_two_orders_gets_one_reorder():
    torch.manual_seed(3)
    m = _Branchy().eval()
    with torch.no_grad():
        m.c.weight[:, :32] *= 0.01  # makes c's priority differ from b's
    x = torch.randn(32, 8) * torch.linspace(0.1, 3, 8)
    qm = quant.quantize(m, [x], progress=False)
    assert not np.array_equal(qm.layers["b"].order, qm.layers["c"].order)
    g = assign_channel_orders(assign_fmaps(build_ir(qm, x[:2])))
    assert reorder_stats(g)["reorders"] == 1
    prog = compiler.compile(qm, x[:2])
    for r in (0.0, 1.0):
        qm.set_ratio(r)
        res = npu_sim.simulate(prog, compiler.encode_input(prog, x[:2]), ratio=r)
        np.testing.assert_array_equal(res.output, qm.run(x[:2]).codes.numpy())
