"""A program for the NPU: instructions, a DRAM image and metadata.

The DRAM image is a set of named regions (numpy arrays: int8/uint8 codes, int32 tables,
float32 constants) at byte addresses. ``inputs`` / ``outputs`` name the regions that
hold the model's input and output. ``layers`` are layer tags (``Instr.layer`` indexes
them); ``max4_regs`` names the max4 registers (one per GEMM layer) and ``max4_tables``
maps a ratio (as the string ``f"{r:g}"``) to the register values for that ratio.

``save(path)`` writes one ``.npz`` (regions as arrays, everything else as JSON inside);
``Program.load(path)`` reads it back; ``disassemble()`` prints it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from . import isa
from .errors import ProgramError

ALIGN = 64
DTYPES = ("int8", "uint8", "int32", "float32")


@dataclass
class Region:
    name: str
    addr: int
    array: np.ndarray


def ratio_key(r) -> str:
    return f"{float(r):g}"


class Program:
    def __init__(self, instructions=None, *, layers=None, max4_regs=None, max4_tables=None,
                 inputs=None, outputs=None, meta=None, config=None):
        self.instructions = list(instructions or [])
        self.regions: dict[str, Region] = {}
        self.layers = list(layers or [])
        self.max4_regs = list(max4_regs or [])
        self.max4_tables = {ratio_key(k): list(v) for k, v in (max4_tables or {}).items()}
        self.inputs = list(inputs or [])
        self.outputs = list(outputs or [])
        self.meta = dict(meta or {})
        self.config = dict(config) if config else None
        self._next_addr = ALIGN

    # ----------------------------------------------------------------- building
    def add_region(self, name, data=None, *, shape=None, dtype=None, addr=None) -> int:
        """Place a region in DRAM (``data`` or zeros of ``shape``/``dtype``); returns its address."""
        if name in self.regions:
            raise ProgramError(f"DRAM region {name!r} already exists")
        arr = np.array(data) if data is not None else np.zeros(shape, dtype=dtype)
        if dtype is not None:
            arr = arr.astype(dtype)
        if arr.dtype.name not in DTYPES:
            raise ProgramError(f"DRAM region {name!r}: dtype {arr.dtype} not one of {DTYPES}")
        if addr is None:
            addr = self._next_addr
        for r in self.regions.values():
            if addr < r.addr + r.array.nbytes and r.addr < addr + max(arr.nbytes, 1):
                raise ProgramError(f"DRAM region {name!r} at {addr} overlaps region {r.name!r}")
        self.regions[name] = Region(name, int(addr), np.ascontiguousarray(arr))
        self._next_addr = max(self._next_addr,
                              -(-(addr + max(arr.nbytes, 1)) // ALIGN) * ALIGN)
        return int(addr)

    def addr(self, name) -> int:
        return self.region(name).addr

    def region(self, name) -> Region:
        if name not in self.regions:
            raise ProgramError(f"no DRAM region named {name!r} (have: {sorted(self.regions)})")
        return self.regions[name]

    def emit(self, ins) -> int:
        self.instructions.append(ins)
        return len(self.instructions) - 1

    def layer_id(self, name) -> int:
        if name not in self.layers:
            self.layers.append(name)
        return self.layers.index(name)

    def max4_reg(self, name) -> int:
        if name not in self.max4_regs:
            self.max4_regs.append(name)
        return self.max4_regs.index(name)

    def set_max4_table(self, ratio, values) -> None:
        values = [int(v) for v in values]
        if len(values) != len(self.max4_regs):
            raise ProgramError(f"max4 table for ratio {ratio}: {len(values)} values for "
                               f"{len(self.max4_regs)} registers")
        self.max4_tables[ratio_key(ratio)] = values

    def max4_for_ratio(self, ratio) -> list:
        key = ratio_key(ratio)
        if key not in self.max4_tables:
            raise ProgramError(f"program has no max4 table for ratio {ratio} "
                               f"(has: {sorted(self.max4_tables, key=float)})")
        return list(self.max4_tables[key])

    # --------------------------------------------------------------- checking
    def validate(self) -> None:
        isa.validate(self.instructions)
        for i, ins in enumerate(self.instructions):
            if isinstance(ins, isa.Finish) and i != len(self.instructions) - 1:
                raise ProgramError(f"instruction {i} (FINISH) is not the last instruction")
            if ins.layer >= len(self.layers):
                raise ProgramError(f"instruction {i} ({ins.OP}): layer tag {ins.layer} but "
                                   f"the program has {len(self.layers)} layers")
            reg = getattr(ins, "max4_reg", -1)
            if isinstance(ins, isa.SetMax4):
                reg = ins.reg
            if reg >= len(self.max4_regs):
                raise ProgramError(f"instruction {i} ({ins.OP}): max4 register {reg} but the "
                                   f"program has {len(self.max4_regs)}")
        for n in self.inputs + self.outputs:
            self.region(n)

    # ------------------------------------------------------------------- I/O
    def _header(self) -> dict:
        return {
            "format": "flexiq-npu-program/1",
            "instructions": [isa.to_json_obj(x) for x in self.instructions],
            "regions": [{"name": r.name, "addr": r.addr, "dtype": r.array.dtype.name,
                         "shape": list(r.array.shape)} for r in self.regions.values()],
            "layers": self.layers, "max4_regs": self.max4_regs,
            "max4_tables": self.max4_tables, "inputs": self.inputs, "outputs": self.outputs,
            "meta": self.meta, "config": self.config,
        }

    def save(self, path) -> None:
        arrays = {f"region_{i}": r.array for i, r in enumerate(self.regions.values())}
        with open(path, "wb") as f:
            np.savez_compressed(f, __program__=np.array(json.dumps(self._header())), **arrays)

    @classmethod
    def load(cls, path) -> Program:
        try:
            z = np.load(path, allow_pickle=False)
            head = json.loads(str(z["__program__"]))
        except (OSError, ValueError, KeyError) as e:
            raise ProgramError(f"cannot read NPU program {path}: {e}") from None
        if head.get("format") != "flexiq-npu-program/1":
            raise ProgramError(f"{path}: not a FlexiQ NPU program (format "
                               f"{head.get('format')!r})")
        prog = cls([isa.from_json_obj(d, i) for i, d in enumerate(head["instructions"])],
                   layers=head["layers"], max4_regs=head["max4_regs"],
                   max4_tables=head["max4_tables"], inputs=head["inputs"],
                   outputs=head["outputs"], meta=head["meta"], config=head["config"])
        for i, r in enumerate(head["regions"]):
            prog.add_region(r["name"], z[f"region_{i}"], addr=r["addr"])
        return prog

    def disassemble(self) -> str:
        lines = [f"; FlexiQ NPU program: {len(self.instructions)} instructions, "
                 f"{len(self.layers)} layers, {len(self.max4_regs)} max4 registers"]
        for r in sorted(self.regions.values(), key=lambda r: r.addr):
            role = " (input)" if r.name in self.inputs else (
                " (output)" if r.name in self.outputs else "")
            lines.append(f"; region {r.name:<24} @0x{r.addr:08x} {r.array.dtype.name}"
                         f"{list(r.array.shape)}{role}")
        for k in sorted(self.max4_tables, key=float):
            lines.append(f"; max4[ratio={k}] = {self.max4_tables[k]}")
        for i, ins in enumerate(self.instructions):
            lines.append(f"{i:5d}: " + isa.format_instr(ins, self.layers))
        return "\n".join(lines)
