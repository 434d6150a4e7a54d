"""Dynamic extraction: where the OR masks of 4-bit GEMM inputs come from.

The vector instruction that writes a dynamic 4-bit GEMM's input OR-reduces the
magnitudes per channel group into a persistent area of the ``param`` buffer, one mask
area per image (``LoweringContext.alloc_masks`` / ``or_fields``). ``plan_masks`` decides
up front which tensors get masks, so their writers know it when they are lowered; an
input that no vector op writes (the model input, a DMA gather, a cat) gets a copy pass
that makes them (``prepare_masks``).
"""

from __future__ import annotations

import math

from ..memory import Tensor
from .elementwise import lower_clamp

#: ops that hand their input's memory on (a writer's masks serve their readers)
_ALIASES = ("fused", "mul", "pad")
#: producers that no vector instruction writes: their readers copy (``prepare_masks``)
_NO_WRITER = ("input", "layout", "cat")


def _dynamic_layers(g):
    for n, d in g.nodes(data=True):
        L = d.get("layer")
        if L is not None and L.eligible:
            yield n, L


def mask_entries(g, qcfg) -> int:
    """``param`` entries the OR masks need: one per channel group of every dynamic 4-bit
    GEMM input, per image."""
    if not qcfg.dynamic:
        return 0
    batch = int(g.graph["batch"])
    return sum(batch * math.ceil(L.in_channels / L.group_size) for _, L in _dynamic_layers(g))


def plan_masks(ctx) -> None:
    """Writers of dynamic 4-bit GEMM inputs OR-reduce as they write (set up up front)."""
    if not ctx.qcfg.dynamic:
        return
    g = ctx.g
    for n, L in _dynamic_layers(g):
        src = ctx.src(n, ctx.first_input(n))
        while g.nodes[src]["kind"] in _ALIASES:
            src = ctx.src(src, ctx.first_input(src))
        if g.nodes[src]["kind"] in _NO_WRITER:
            continue  # a copy pass makes the masks (prepare_masks)
        ng = math.ceil(L.in_channels / L.group_size)
        if src not in ctx.mask_group:
            ctx.alloc_masks(src, ctx.batch, ng, L.group_size)


def prepare_masks(ctx, name, x: Tensor, L) -> Tensor:
    """``x`` if it has OR masks; else a copy of it (a clamp to its own code range) that
    makes them."""
    if (x.name, 0) in ctx.masks:
        return x
    ng = math.ceil(L.in_channels / L.group_size)
    y = ctx.new_tensor(f"{name}.dynin", x.shape, x.signed, x.scale, x.perm, fmap=x.fmap)
    ctx.alloc_masks(y.name, ctx.batch, ng, L.group_size)
    lo, hi = (-128, 127) if x.signed else (0, 255)
    lower_clamp(ctx, f"{name}.dynin", x, y, lo, hi)
    return y
