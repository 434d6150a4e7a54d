"""The lowering table: op kind (``quant.capture`` kinds, plus the ``reorder`` nodes of
the channel-order pass) -> the function that lowers one node of that kind,
``fn(ctx, name, node_attrs)``; it reads its inputs through ``ctx.read``, emits
instructions and binds what the node stands for in ``ctx.env``."""

from __future__ import annotations

from .. import reorder
from . import cat, elementwise, gemm, graph_io, pool, views

LOWERINGS = {
    "input": graph_io.lower_input_node,
    "const": graph_io.lower_const_node,
    "shape": graph_io.lower_shape_node,
    "output": graph_io.lower_output_node,
    "layout": views.lower_layout_node,
    "fused": views.lower_fused_node,
    "mul": views.lower_mul_node,
    "pad": views.lower_pad_node,
    "conv": gemm.lower_conv_node,
    "linear": gemm.lower_conv_node,
    "matmul": gemm.lower_matmul_node,
    "add": elementwise.lower_add_node,
    "sub": elementwise.lower_sub_node,
    "relu": elementwise.lower_relu_node,
    "relu6": elementwise.lower_relu6_node,
    "hardtanh": elementwise.lower_relu6_node,
    "softmax": elementwise.lower_softmax_node,
    "gelu": elementwise.lower_gelu_node,
    "layernorm": elementwise.lower_layernorm_node,
    "maxpool": pool.lower_maxpool_node,
    "avgpool": pool.lower_avgpool_node,
    "mean": pool.lower_mean_node,
    "cat": cat.lower_cat_node,
    "reorder": reorder.lower_reorder_node,
}

#: the op kinds the NPU compiler can lower
LOWERED = frozenset(LOWERINGS)
