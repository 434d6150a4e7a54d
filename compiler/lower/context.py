"""State shared by the lowering functions: the program being built, the SRAM plan,
tensor placement, and the dynamic-extraction mask areas."""

from __future__ import annotations

import numpy as np

from ..memory import SramPlan, Tensor, phys_shape
from ..pipeline import OpEmitter


class LoweringContext:
    def __init__(self, program, cfg, qcfg, g, mask_entries):
        self.program = program
        self.cfg = cfg
        self.qcfg = qcfg
        self.g = g
        self.em = OpEmitter(program)
        self.sram = SramPlan(cfg, mask_entries)
        self.mask_next = self.sram.mask_base
        self.masks: dict = {}  # (tensor name, image) -> param address
        self.mask_group: dict = {}  # tensor name -> group size of its dynamic consumers
        self.consts: dict = {}

    # ---- DRAM -------------------------------------------------------------------------
    def new_tensor(self, name, shape, signed, scale, perm=None, init=None, fmap=None) -> Tensor:
        region = f"t:{name}"
        dtype = "int8" if signed else "uint8"
        if fmap is None:
            fmap = bool(self.g.nodes[name].get("fmap")) if name in self.g else False
        if init is None:
            self.program.add_region(region, shape=phys_shape(shape, fmap), dtype=dtype)
        else:
            self.program.add_region(region, init.astype(dtype))
        return Tensor(name, region, tuple(int(s) for s in shape), bool(signed), float(scale),
                      None if perm is None else np.asarray(perm, dtype=np.int64), fmap)

    def table(self, name, data, dtype="int32") -> int:
        """A constant table in DRAM (deduplicated by name); returns its address."""
        if name not in self.program.regions:
            self.program.add_region(name, np.asarray(data).astype(dtype))
        return self.program.addr(name)

    def addr(self, t: Tensor, elem_offset: int = 0) -> int:
        return self.program.addr(t.region) + int(elem_offset)  # 1-byte codes

    # ---- dynamic extraction masks -------------------------------------------------------
    def mask_addr(self, tensor_name, image) -> int:
        key = (tensor_name, image)
        if key not in self.masks:
            raise KeyError(key)
        return self.masks[key]

    def alloc_masks(self, tensor_name, images, n_groups, group_size):
        self.mask_group[tensor_name] = group_size
        for b in range(images):
            self.masks[(tensor_name, b)] = self.mask_next
            self.mask_next += n_groups

    def or_fields(self, tensor_name, image, ch0, first: bool) -> dict:
        """Fields of a writer that OR-reduces what it writes into ``tensor_name``'s masks.

        ``first``: this is the writer's first band of channels ``ch0...`` for ``image``.
        ``or_reset`` clears every mask the instruction touches, so it is set only when
        ``ch0`` starts a group: a channel tile that starts inside a group (tiles narrower
        than the group) must add to what the earlier tiles of that group ORed, not wipe
        it. Writers pick tile widths with ``mask_tile`` so that every group still gets
        its reset from the tile that starts it."""
        if (tensor_name, image) not in self.masks:
            return {}
        g = self.mask_group[tensor_name]
        return {"or_addr": self.masks[(tensor_name, image)],
                "or_group": g, "or_ch0": int(ch0),
                "or_reset": bool(first) and int(ch0) % g == 0}

    def mask_tile(self, tensor_name, width: int) -> int:
        """Largest channel-tile width <= ``width`` whose tiles (starting at multiples of it)
        start every mask group of ``tensor_name``: a multiple or a divisor of the group
        size. ``width`` itself when the tensor has no masks."""
        if tensor_name not in self.mask_group or width <= 0:
            return width
        g = self.mask_group[tensor_name]
        if width >= g:
            return width // g * g
        return max(d for d in range(1, width + 1) if g % d == 0)
