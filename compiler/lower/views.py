"""Ops that only move codes (reshape, permute, transpose, slicing, expand, roll, ...),
and the ops that make no instructions at all (fused epilogues, multiplication by a
constant, zero padding folded into the next conv).

They are not executed one by one: each one maps an *index array* (for every element of
its logical output, the flat physical index of that element in a materialized base
tensor), by running the very same torch op on the index array. Only when a real op reads
the result is it materialized, by DMA: an identity map aliases the base region; anything
else is cut into 2-D strided blocks (runs of contiguous elements with a constant stride)
that are loaded into SRAM and stored contiguously.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.fx.node import map_arg

from npu_sim import isa

from ..errors import CompileError, TilingError
from ..memory import Tensor, from_phys, to_phys
from .op_args import mul_factor, pad_amounts


@dataclass
class IndexMap:
    base: Tensor
    index: torch.Tensor  # logical shape of the view; values: flat physical base indices


def base_map(t: Tensor) -> IndexMap:
    n = int(np.prod(t.phys))
    idx = from_phys(np.arange(n, dtype=np.int64).reshape(t.phys), t.perm, t.fmap)
    return IndexMap(t, torch.from_numpy(idx))


def evaluate(qm, fx_node, args, kwargs):
    """Run the fx node's op (a function, a method or a module of ``qm``) on ``args``."""
    op, target = fx_node.op, fx_node.target
    if op == "call_function":
        return target(*args, **kwargs)
    if op == "call_method":
        return getattr(args[0], target)(*args[1:], **kwargs)
    if op == "call_module":
        return qm.module(fx_node)(*args, **kwargs)
    raise CompileError(f"cannot evaluate {op} {target}")


def apply_layout(qm, fx_node, args, kwargs):
    """Run the layout op on index tensors: ``args`` hold IndexMaps where tensors were."""
    base = None

    def unwrap(a):
        nonlocal base
        if isinstance(a, IndexMap):
            base = a.base
            return a.index
        if isinstance(a, (list, tuple)):
            return type(a)(unwrap(v) for v in a)
        return a

    out = evaluate(qm, fx_node, unwrap(args), unwrap(kwargs))

    def wrap(o):
        if isinstance(o, torch.Tensor):
            return IndexMap(base, o)
        if isinstance(o, (list, tuple)):
            return type(o)(wrap(v) for v in o)
        return o

    return wrap(out)


def _blocks(idx: np.ndarray):
    """Cut a gather ``dst[i] = src[idx[i]]`` into 2-D blocks (dst_start, src_start, rows,
    cols, src_stride), dst contiguous."""
    n = idx.size
    if n == 0:
        return []
    brk = np.flatnonzero(np.diff(idx) != 1) + 1
    starts = np.concatenate([[0], brk])
    lens = np.diff(np.concatenate([starts, [n]]))
    src = idx[starts]
    out = []
    i = 0
    k = len(starts)
    while i < k:
        j = i + 1
        stride = int(src[j] - src[i]) if j < k else 0
        while j < k and stride >= 1 and lens[j] == lens[i] and src[j] - src[j - 1] == stride:
            j += 1
        rows = j - i
        out.append((int(starts[i]), int(src[i]), rows, int(lens[i]), stride if rows > 1 else 0))
        i = j
    return out


def alias_perm(m: IndexMap, fmap: bool):
    """If ``m`` is its base's memory reinterpreted with the base's channel order, that order
    (or "identity"); else None."""
    base = m.base
    idx = to_phys(m.index.numpy(), base.perm, fmap).reshape(-1)
    if idx.size == int(np.prod(base.phys)) and np.array_equal(idx, np.arange(idx.size)):
        return "identity" if base.perm is None else base.perm
    return None


def block_count(m: IndexMap, perm, fmap: bool) -> int:
    """How many DMA blocks gathering ``m`` with channel order ``perm`` takes."""
    return len(_blocks(to_phys(m.index.numpy(), perm, fmap).reshape(-1)))


def materialize(ctx, name, m: IndexMap, shape, perm, signed, scale, fmap=False) -> Tensor:
    """A real tensor for ``m`` with memory channel order ``perm`` (alias when possible)."""
    idx = to_phys(m.index.numpy(), perm, fmap).reshape(-1)
    base = m.base
    if idx.size == int(np.prod(base.phys)) and np.array_equal(idx, np.arange(idx.size)):
        return Tensor(name, base.region, tuple(shape), signed, scale, perm, fmap)
    y = ctx.new_tensor(name, shape, signed, scale, perm, fmap=fmap)
    sp = ctx.sram
    blocks = []
    for dst, src, rows, cols, stride in _blocks(idx):
        # split blocks larger than a slot
        per = max(1, sp.in_slot // max(cols, 1))
        if cols > sp.in_slot:
            raise TilingError(f"layer '{name}': a contiguous run of {cols} elements exceeds "
                              f"the 'inp' slot ({sp.in_slot})")
        for r0 in range(0, rows, per):
            rr = min(per, rows - r0)
            blocks.append((dst + r0 * cols, src + r0 * stride, rr, cols, stride))
    pipe = ctx.em.pipeline(name, ("load", "store"))
    i = 0
    k = 0
    while k < len(blocks):
        slot = i % 2
        used = 0
        loads = []
        dst0 = blocks[k][0]
        while k < len(blocks) and used + blocks[k][2] * blocks[k][3] <= sp.in_slot \
                and blocks[k][0] == dst0 + used:
            dst, src, rows, cols, stride = blocks[k]
            loads.append(isa.Load(buf="inp", sram_addr=sp.in_addr[slot] + used,
                                  dram_addr=ctx.addr(base, src), rows=rows, cols=cols,
                                  dram_stride=stride or cols))
            used += rows * cols
            k += 1
        st = isa.Store(buf="inp", sram_addr=sp.in_addr[slot], dram_addr=ctx.addr(y, dst0),
                       rows=1, cols=used)
        pipe.tile(load=loads, store=[st])
        i += 1
    pipe.close()
    return y


# ---------------------------------------------------------------- nodes
def _view_args(ctx, name):
    """``name``'s fx arguments with tensors as index maps (views of their memory) and
    constant arrays as torch tensors."""
    fx = ctx.g.nodes[name]["fx"]

    def val(n):
        v = ctx.env[ctx.src(name, n.name)]
        if isinstance(v, Tensor):
            return base_map(v)
        if isinstance(v, np.ndarray):
            return torch.from_numpy(v)
        return v

    return map_arg(fx.args, val), map_arg(fx.kwargs, val)


def lower_layout_node(ctx, name, d):
    """A layout op: a view of its input (or a constant the IR capture computed)."""
    if "const" in d:
        ctx.env[name] = d["const"]
        return
    args, kwargs = _view_args(ctx, name)
    ctx.env[name] = apply_layout(ctx.qm, d["fx"], args, kwargs)


def lower_fused_node(ctx, name, d):
    """An activation fused into its producer's requantization: its producer's value."""
    ctx.env[name] = ctx.env[ctx.src(name, ctx.first_input(name))]


def lower_mul_node(ctx, name, d):
    """Multiplication by a Python number: the same codes at a scaled scale."""
    x = ctx.read(name, ctx.first_input(name))
    c = mul_factor(d["fx"])
    ctx.env[name] = Tensor(x.name, x.region, x.shape, x.signed, x.scale * float(c), x.perm,
                           x.fmap)


def lower_pad_node(ctx, name, d):
    """Zero padding in front of a conv: the conv's DMA pads (no data is moved)."""
    pads = pad_amounts(ctx.qm, d["fx"])  # (left, right, top, bottom)
    for u in ctx.g.successors(name):
        L = ctx.g.nodes[u].get("layer")
        if L is None or L.kind != "conv":
            raise CompileError(f"zero padding at '{name}' ({d['source']}) must feed convs only")
    ctx.pads[name] = pads
    ctx.env[name] = ctx.read(name, ctx.first_input(name))
