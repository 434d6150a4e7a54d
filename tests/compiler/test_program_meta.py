"""compiler/program_meta.py: max4 tables per ratio and the program's meta."""

import numpy as np
import torch

import compiler
import quant
from compiler.program_meta import DEFAULT_RATIOS, program_ratios
from quant.select import select
from tests.quant.nets import SmallConvNet, init_bn


def test_ratios_default_and_the_selection_s_are_tabulated():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 12, 12)
    qm = quant.quantize(init_bn(SmallConvNet()), [x], progress=False)
    assert program_ratios(qm) == list(DEFAULT_RATIOS)
    assert program_ratios(qm, [0.0, 1.0]) == [0.0, 1.0]
    sel = select(qm, [x], method="random", ratios=(0.0, 0.3, 1.0), seed=0, progress=False)
    qm.attach_selection(sel)
    assert program_ratios(qm, [0.0, 1.0]) == [0.0, 0.3, 1.0]
    prog = compiler.compile(qm, x[:1], ratios=[0.0, 1.0])
    assert sorted(map(float, prog.max4_tables)) == [0.0, 0.3, 1.0]
    table = qm.max4_for_ratio(0.3)
    assert prog.max4_tables["0.3"] == [table[n] for n in prog.max4_regs]
    assert any(table.values())


def test_meta_describes_the_graph(make_qmodel):
    qm, x = make_qmodel("vit")
    g = compiler.build_graph(qm, x[:2])
    prog = compiler.compile(qm, x[:2], graph=g, name="tiny")
    meta = prog.meta
    assert meta["model"] == "tiny" and meta["batch"] == 2
    assert meta["reorder_layers"] == [n for n, d in g.nodes(data=True) if d["kind"] == "reorder"]
    assert set(meta["gemm_layers"]) == set(qm.layers)
    for n, L in qm.layers.items():
        assert meta["gemm_layers"][n] == {"channels": L.in_channels,
                                          "group_size": L.group_size, "eligible": L.eligible}
    assert meta["quant"] == qm.config.to_dict()
    assert np.isclose(meta["output"]["scale"], qm.run(x[:2]).scale)
