"""compiler/passes/fmap.py: which 4-d tensors are feature maps."""

from compiler.ir import build_ir
from compiler.passes.fmap import assign_fmaps


def test_fmaps(make_qmodel):
    qm, x = make_qmodel("vit")
    g = assign_fmaps(build_ir(qm, x[:2]))
    # attention scores are 4-d but not feature maps: softmax reduces over the last axis
    assert g.nodes["matmul"]["shape"][-1] == 17 and not g.nodes["matmul"]["fmap"]
    qm, x = make_qmodel("conv")
    g = assign_fmaps(build_ir(qm, x[:2]))
    assert g.nodes["c3"]["fmap"] and g.nodes["add"]["fmap"]
