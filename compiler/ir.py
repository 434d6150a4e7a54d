"""The compiler's IR: a networkx DiGraph of typed nodes with shapes and quant params.

``build_ir(qmodel, example_input)`` walks the quantized model's captured fx graph
(``qmodel.graph``: BatchNorm already folded and ReLUs fused by ``quant.capture`` /
``quant.quantize``), runs the integer runtime once on ``example_input`` to learn every
tensor's shape (``qmodel.run(x, on_value=...)``), and makes one IR node per fx node. Node
attributes:

``kind``       op kind (``quant.capture`` kinds, e.g. conv, linear, add, layout, ...)
``params``     the op's parsed arguments (``node.meta["params"]``, keys in quant/op_params.py)
``shape``      logical output shape (NCHW for feature maps), or a list for tuple outputs
``scale``, ``signed``  output quantization (None for non-tensors)
``layer``      the ``quant.layers.GemmLayer`` of a conv/linear node
``q``          the ``quant.layers.NodeQ`` of a requantizing node
``fx``         the fx node (target, args) and ``source`` (user source line)
``const``      float value of a constant node (parameters computed into a tensor)

Edges run producer -> consumer with ``index`` = position among the consumer's inputs.
"""

from __future__ import annotations

import networkx as nx
import torch

from quant.capture import source_of
from quant.runtime import QTensor


def _describe(v):
    if isinstance(v, QTensor):
        return {"shape": tuple(v.codes.shape), "scale": v.scale, "signed": v.signed}
    if isinstance(v, torch.Tensor):
        return {"shape": tuple(v.shape), "scale": None, "signed": None,
                "const": v.detach().double().numpy() if v.is_floating_point() else None}
    if isinstance(v, (tuple, list)) and v and all(isinstance(o, QTensor) for o in v):
        return {"shape": [tuple(o.codes.shape) for o in v], "scale": v[0].scale,
                "signed": v[0].signed}
    return {"shape": None, "scale": None, "signed": None, "value": v}


def build_ir(qmodel, example_input) -> nx.DiGraph:
    """IR of ``qmodel`` specialised to ``example_input``'s shape (batch included)."""
    x = torch.as_tensor(example_input).float()
    seen: dict = {}
    qmodel.run(x, on_value=lambda n, v: seen.__setitem__(n.name, _describe(v)))
    g = nx.DiGraph(name=type(qmodel.gm).__name__, batch=int(x.shape[0]),
                   input_shape=tuple(x.shape))
    for n in qmodel.graph.nodes:
        m = seen.get(n.name, {})
        attrs = dict(kind=n.meta["kind"], params=n.meta["params"], fx=n, source=source_of(n),
                     shape=m.get("shape"), scale=m.get("scale"), signed=m.get("signed"))
        if n.name in qmodel.layers:
            attrs["layer"] = qmodel.layers[n.name]
        if n.name in qmodel.node_q:
            attrs["q"] = qmodel.node_q[n.name]
        if "const" in m and m["const"] is not None:
            attrs["const"] = m["const"]
        if "value" in m:
            attrs["value"] = m["value"]
        g.add_node(n.name, **attrs)
        for i, a in enumerate(n.all_input_nodes):
            g.add_edge(a.name, n.name, index=i)
    return g


def tensor_inputs(g: nx.DiGraph, name: str) -> list[str]:
    """Inputs of a node that carry activations (not constants or sizes), in arg order."""
    fx_node = g.nodes[name]["fx"]
    return [a.name for a in fx_node.all_input_nodes
            if g.nodes[a.name]["kind"] not in ("const", "shape")]


def summary(g: nx.DiGraph) -> str:
    rows = []
    for name, d in g.nodes(data=True):
        shp = d["shape"]
        scale = "" if d["scale"] is None else f"{d['scale']:.3g}"
        rows.append(f"{name:<32} {d['kind']:<10} {str(shp):<24} {scale}")
    return "\n".join(rows)
