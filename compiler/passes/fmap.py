"""Which 4-d tensors are feature maps (logical NCHW, stored NHWC).

Conv and pooling outputs, the image input, and what element-wise ops make of them are
feature maps, and so is a concatenation of feature maps; a layout op's output is one when a
conv or pool reads it. Other 4-d tensors
(attention heads [B, H, T, D], Swin windows) keep their logical layout, so the axis a
row-wise op reduces over is always the last one in memory.
"""

from __future__ import annotations

import networkx as nx

from ..ir import tensor_inputs

_MAKERS = {"input", "conv", "maxpool", "avgpool"}
_KEEP = {"relu", "relu6", "hardtanh", "fused", "mul", "add", "sub", "gelu", "reorder", "pad"}
_READERS = {"conv", "maxpool", "avgpool"}


def assign_fmaps(g: nx.DiGraph) -> nx.DiGraph:
    for n in nx.topological_sort(g):
        d = g.nodes[n]
        shp = d.get("shape")
        fmap = False
        if isinstance(shp, tuple) and len(shp) == 4 and "const" not in d:
            k = d["kind"]
            if k in _MAKERS:
                fmap = True
            elif k in _KEEP:
                ins = tensor_inputs(g, n) if d.get("fx") is not None else list(g.predecessors(n))
                ins = [a for a in ins if "const" not in g.nodes[a]]
                fmap = bool(ins) and bool(g.nodes[ins[0]].get("fmap"))
            elif k == "cat":
                # channels (or any axis) of feature maps joined: a feature map again
                ins = [a for a in tensor_inputs(g, n) if "const" not in g.nodes[a]]
                fmap = bool(ins) and all(g.nodes[a].get("fmap") for a in ins)
            elif k == "layout":
                fmap = any(g.nodes[u]["kind"] in _READERS for u in g.successors(n))
        d["fmap"] = fmap
    return g
