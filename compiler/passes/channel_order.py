"""Channel-order assignment: which order each tensor holds its channels in, and where a
REORDER must go (compiler/reorder.py inserts the nodes).

Every GEMM wants its input channels in memory in its priority order (4-bit channels
first, in groups). A GEMM producer can write its output channels in any order for free
(its weight rows, bias and requantization tables are permuted at compile time).
Elementwise per-channel ops pass an order through unchanged, so the tensors they connect
form one *layout class* that holds one channel order. Where a class's order differs from
what a consumer needs (a residual stream feeding GEMMs with different orders, a tensor
feeding several GEMMs, an op that reduces over channels such as LayerNorm), a REORDER
node (a gather along the channel axis on the vector unit) is inserted, and its cycles
show in the report. Each class picks the candidate order with the fewest reordered
elements.

Result attributes: ``perm`` on every activation node (memory channel j holds logical
channel ``perm[j]``; None means identity), ``out_perm`` on GEMM nodes, and new nodes of
kind ``reorder`` with ``src_perm``/``dst_perm`` (``reorder.insert_reorders``).
"""

from __future__ import annotations

from collections import defaultdict

import networkx as nx
import numpy as np

from ..ir import tensor_inputs
from ..reorder import insert_reorders, moved_elements

# elementwise per channel: output order = input order, all inputs share it
TRANSPARENT = {"relu", "relu6", "hardtanh", "fused", "maxpool", "add", "sub", "mul", "gelu",
               "pad"}
GEMMS = {"conv", "linear"}


def _is_depthwise(d) -> bool:
    L = d.get("layer")
    return L is not None and L.kind == "conv" and L.groups == L.in_channels == L.out_channels


def _transparent(d) -> bool:
    if d["kind"] in TRANSPARENT:
        return True
    if d["kind"] == "avgpool":
        return True  # pooling keeps channels
    return _is_depthwise(d)


def _free_producer(d) -> bool:
    """GEMMs permute their weight rows, gathers their index table: any order is free."""
    return (d["kind"] in GEMMS and not _is_depthwise(d)) or d["kind"] == "layout"


def _channels(d):
    shp = d["shape"]
    if not isinstance(shp, tuple) or len(shp) < 2:
        return None
    return shp[1] if d.get("fmap") else shp[-1]


class _UF:
    def __init__(self):
        self.p = {}

    def find(self, a):
        self.p.setdefault(a, a)
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a, b):
        self.p[self.find(a)] = self.find(b)


def assign_channel_orders(g: nx.DiGraph) -> nx.DiGraph:
    """Choose channel orders, fold them into GEMM producers, insert REORDER nodes."""
    acts = [n for n, d in g.nodes(data=True)
            if d["kind"] not in ("const", "shape", "output") and "const" not in d
            and isinstance(d["shape"], tuple)]
    uf = _UF()
    for n in acts:
        uf.find(n)
        d = g.nodes[n]
        if _transparent(d):
            for a in tensor_inputs(g, n):
                if _channels(g.nodes[a]) == _channels(d):
                    uf.union(a, n)
    classes = defaultdict(list)
    for n in acts:
        classes[uf.find(n)].append(n)

    reorders = []  # (producer, consumer, src_perm, dst_perm)
    for members in classes.values():
        mset = set(members)
        c = _channels(g.nodes[members[0]])
        ident = np.arange(c) if c else None
        # who produces into the class, who consumes from it
        free_producers = [m for m in members if _free_producer(g.nodes[m])]
        fixed_producers = [m for m in members if not _transparent(g.nodes[m]) and m not in free_producers]
        needs = []  # (member, consumer, wanted order or None=any)
        for m in members:
            for u in g.successors(m):
                du = g.nodes[u]
                if u in mset and _transparent(du):
                    continue  # passes the class's order through
                # a GEMM (or fixed op) in this class by its *output* (e.g. the conv of a
                # residual branch `relu(conv(y) + y)`) still reads y as a consumer
                if du["kind"] in GEMMS and not _is_depthwise(du) and tensor_inputs(g, u)[:1] == [m]:
                    # a layer that never runs 4-bit reads any order (its columns follow)
                    needs.append((m, u, du["layer"].order if du["layer"].eligible else None))
                elif du["kind"] == "layout":
                    needs.append((m, u, None))  # a gather: any order folds into its table
                else:
                    needs.append((m, u, ident))
        if c is None:
            continue
        candidates = [ident] + [w for _, _, w in needs if w is not None]
        best, best_cost = ident, None
        for cand in candidates:
            cost = sum(moved_elements(g.nodes[m]) for m, _, w in needs
                       if w is not None and not np.array_equal(w, cand))
            cost += sum(moved_elements(g.nodes[m]) for m in fixed_producers if not np.array_equal(cand, ident))
            if best_cost is None or cost < best_cost:
                best, best_cost = cand, cost
        perm = None if np.array_equal(best, ident) else np.asarray(best, dtype=np.int64)
        for m in members:
            g.nodes[m]["perm"] = perm
        for m in free_producers:
            g.nodes[m]["out_perm"] = perm
        if perm is not None:
            for m in fixed_producers:
                for u in list(g.successors(m)):
                    if u in mset:
                        reorders.append((m, u, None, perm))
        for m, u, want in needs:
            if want is not None and not np.array_equal(want, best):
                reorders.append((m, u, perm, None if np.array_equal(want, ident) else np.asarray(want)))
    # one REORDER per (tensor, target order), shared by the consumers that want it
    insert_reorders(g, reorders)
    return g
