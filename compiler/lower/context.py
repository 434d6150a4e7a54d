"""State shared by the lowering functions: the program being built, the SRAM plan,
tensor placement, what each lowered node stands for, and the dynamic-extraction mask
areas."""

from __future__ import annotations

import numpy as np

from .. import reorder
from ..errors import CompileError
from ..memory import SramPlan, Tensor, phys_shape
from ..schedule import OpEmitter
from .views import IndexMap


class LoweringContext:
    def __init__(self, program, cfg, qmodel, g, mask_entries):
        self.program = program
        self.cfg = cfg
        self.qm = qmodel
        self.qcfg = qmodel.config
        self.g = g
        self.batch = int(g.graph["batch"])
        #: node name -> what it stands for: a Tensor, a layout view (IndexMap), a constant
        #: array or a Python value
        self.env: dict = {}
        self.pads: dict = {}  # pad node -> (left, right, top, bottom), folded into its convs
        self.out_tensor: Tensor | None = None
        self.em = OpEmitter(program)
        self.sram = SramPlan(cfg, mask_entries)
        self.mask_next = self.sram.mask_base
        self.masks: dict = {}  # (tensor name, image) -> param address
        self.mask_group: dict = {}  # tensor name -> group size of its dynamic consumers
        self.consts: dict = {}

    # ---- graph nodes ------------------------------------------------------------------
    def src(self, name, arg) -> str:
        """The node that ``name`` reads for its input ``arg`` (a REORDER in between, if the
        channel-order pass put one there)."""
        return self.g.nodes[name].get("input_map", {}).get(arg, arg)

    def first_input(self, name) -> str:
        """The first input of ``name`` that carries activations."""
        fx = self.g.nodes[name]["fx"]
        for a in fx.all_input_nodes:
            if self.g.nodes[a.name]["kind"] not in ("const", "shape"):
                return a.name
        raise CompileError(f"node '{name}' has no activation input")

    def read(self, name, arg, any_order=False) -> Tensor:
        """The materialized tensor that node ``name`` reads as its input ``arg``; a layout
        view is materialized on first read (compiler/reorder.py decides how).
        ``any_order``: the reader takes any channel order."""
        src = self.src(name, arg)
        v = self.env[src]
        if isinstance(v, IndexMap):
            v = reorder.materialize_view(self, src, v, any_order)
            self.env[src] = v
        if not isinstance(v, Tensor):
            raise CompileError(f"node '{name}' ({self.g.nodes[name]['source']}) reads '{arg}', "
                               "which is not an activation tensor")
        return v

    def new(self, name, **kw) -> Tensor:
        """A new DRAM tensor for node ``name``'s output (its shape, quantization and the
        channel order the channel-order pass chose, unless ``perm`` is given)."""
        d = self.g.nodes[name]
        perm = kw.pop("perm", d.get("out_perm", d.get("perm")))
        return self.new_tensor(name, d["shape"], d["signed"], d["scale"], perm, **kw)

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
