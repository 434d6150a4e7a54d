"""REORDER, the vector unit's gather along the channel axis: where it goes and how it is
emitted.

Three decisions make every REORDER of a program, and they all live here:

* **insertion** (``insert_reorders``, run by the channel-order pass
  compiler/passes/channel_order.py): where a tensor's layout class holds another channel
  order than a reader needs, a ``reorder`` node goes between them; one node per (tensor,
  target order), shared by the readers that want that order.
* **materialization at read time** (``materialize_view``): a layout view
  (compiler/lower/views.py) that a real op reads becomes a tensor. If the view is its
  base's memory as it stands, it is aliased, then REORDERed when the reader wants another
  channel order; if gathering straight into the wanted order would cut the DMA into many
  more blocks than gathering in logical order, it is gathered in logical order and then
  REORDERed; otherwise it is gathered straight into the wanted order.
* **emission** (``lower_reorder``): REORDER instructions over bands of rows, with the
  index table in the ``param`` buffer.
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from npu_sim import isa

from .lower.rowwise import lower_rowwise
from .lower.views import alias_perm, block_count, materialize
from .memory import Tensor


def moved_elements(d) -> int:
    """Elements a REORDER of the IR node ``d``'s output moves (per inference)."""
    return int(np.prod(d["shape"])) if isinstance(d["shape"], tuple) else 0


# ---------------------------------------------------------------- insertion (graph pass)
def insert_reorders(g: nx.DiGraph, reorders) -> None:
    """Put REORDER nodes into ``g``. ``reorders``: (producer, reader, src_perm, dst_perm)
    in order; readers of the same producer that want the same order share one node. The
    reader's ``input_map`` sends its input to the REORDER node (new kind ``reorder`` with
    ``src_perm``/``dst_perm``)."""
    made = {}
    for m, u, src, dst in reorders:
        key = (m, None if dst is None else dst.tobytes())
        if key not in made:
            name = f"reorder_{m}_{len(made)}"
            d = g.nodes[m]
            g.add_node(name, kind="reorder", fx=None, source=d["source"], shape=d["shape"],
                       scale=d["scale"], signed=d["signed"], src_perm=src, dst_perm=dst,
                       perm=dst, fmap=d.get("fmap", False))
            g.add_edge(m, name, index=0)
            made[key] = name
        r = made[key]
        idx = g.edges[m, u]["index"]
        g.remove_edge(m, u)
        g.add_edge(r, u, index=idx, via=m)
        g.nodes[u].setdefault("input_map", {})[m] = r


def reorder_stats(g: nx.DiGraph) -> dict:
    """Number of REORDER nodes and the elements they move (per inference)."""
    rs = [n for n, d in g.nodes(data=True) if d["kind"] == "reorder"]
    return {"reorders": len(rs), "elements": sum(moved_elements(g.nodes[n]) for n in rs)}


# ---------------------------------------------------------------- materialization
def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


#: gathering straight into the wanted order is given up for logical order + REORDER when
#: it takes more than ``_SCATTER_FACTOR`` times the logical gather's DMA blocks plus
#: ``_SCATTER_SLACK``
_SCATTER_FACTOR, _SCATTER_SLACK = 2, 4


def materialize_view(ctx, src, v, any_order=False) -> Tensor:
    """The tensor a reader gets for the layout view ``v`` of node ``src`` (see the module
    docstring); ``any_order``: the reader takes any channel order."""
    d = ctx.g.nodes[src]
    fmap = bool(d.get("fmap"))
    want = d.get("perm")
    ap = alias_perm(v, fmap) if (v.base.fmap == fmap) else None
    if ap is not None:
        ap = None if isinstance(ap, str) else ap
        alias = Tensor(src, v.base.region, tuple(d["shape"]), d["signed"], d["scale"], ap, fmap)
        if any_order or _same(ap, want):
            return alias
        y = ctx.new_tensor(f"reorder_{src}", d["shape"], d["signed"], d["scale"], want,
                           fmap=fmap)
        lower_reorder(ctx, f"reorder_{src}", alias, y)
        return y
    if want is not None and not any_order and (
            block_count(v, want, fmap) > _SCATTER_FACTOR * block_count(v, None, fmap)
            + _SCATTER_SLACK):
        # gather in logical order (long DMA runs), then one REORDER
        t = materialize(ctx, src, v, d["shape"], None, d["signed"], d["scale"], fmap)
        y = ctx.new_tensor(f"reorder_{src}", d["shape"], d["signed"], d["scale"], want,
                           fmap=fmap)
        lower_reorder(ctx, f"reorder_{src}", t, y)
        return y
    return materialize(ctx, src, v, d["shape"], None if any_order else want, d["signed"],
                       d["scale"], fmap)


# ---------------------------------------------------------------- emission
def lower_reorder(ctx, name, x, y):
    """REORDER ``x`` into ``y``'s channel order."""
    c = x.channels
    src = x.perm if x.perm is not None else np.arange(c)
    dst = y.perm if y.perm is not None else np.arange(c)
    inv = np.argsort(src)
    idx = inv[dst]  # memory position in x of each memory channel of y
    t = ctx.table(f"{name}:perm", idx.astype(np.int32))

    def make(a, d_addr, rows, cols, ta, orf):
        return isa.Reorder(src_addr=a[0], perm_addr=ta[0], dst_addr=d_addr, rows=rows,
                           cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make, tables=[(t, c)])


def lower_reorder_node(ctx, name, d):
    """A ``reorder`` node that the channel-order pass inserted."""
    src = next(iter(ctx.g.predecessors(name)))
    x = ctx.read(name, src)
    y = ctx.new_tensor(name, d["shape"], d["signed"], d["scale"], d["dst_perm"])
    lower_reorder(ctx, name, x, y)
    ctx.env[name] = y
