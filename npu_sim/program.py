"""A program for the NPU: instructions, a DRAM image and metadata.

The DRAM image is a set of named regions (numpy arrays: int8/uint8 codes, int32 tables,
float32 constants) at byte addresses. ``inputs`` / ``outputs`` name the regions that
hold the model's input and output. ``layers`` are layer tags (``Instr.layer`` indexes
them); ``max4_regs`` names the max4 registers (one per GEMM layer) and ``max4_tables``
maps a ratio (as the string ``f"{r:g}"``) to the register values for that ratio.

``save(path)`` writes one ``.npz`` atomically (regions as arrays, everything else as JSON
inside, plus a SHA-256 of both); ``Program.load(path)`` reads it back, verifies the checksum
and the structure, and raises ``ProgramFileError`` for anything else; ``disassemble()``
prints it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from numeric.ratio import ratio_key

from . import isa
from .errors import ProgramError, ProgramFileError, ProgramRatioError

ALIGN = 64
DTYPES = ("int8", "uint8", "int32", "float32")
FORMAT = "flexiq-npu-program/2"


def _digest(header: str, arrays) -> str:
    """SHA-256 over the JSON header and every region's dtype, shape and bytes."""
    h = hashlib.sha256(header.encode("utf-8"))
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{list(a.shape)}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass
class Region:
    name: str
    addr: int
    array: np.ndarray


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
            raise ProgramRatioError(f"program has no max4 table for ratio {ratio} "
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

    def check_tables(self) -> None:
        """Every max4 table: a ratio in [0, 1], one value per register, each value between 0
        and the layer's input channel count (when the program records it)."""
        layers = self.meta.get("gemm_layers") or {}
        for key, values in self.max4_tables.items():
            try:
                r = float(key)
            except ValueError:
                raise ProgramError(f"max4 table key {key!r} is not a ratio") from None
            if not 0.0 <= r <= 1.0:
                raise ProgramError(f"max4 table for ratio {key} lies outside [0, 1]")
            if len(values) != len(self.max4_regs):
                raise ProgramError(f"max4 table for ratio {key}: {len(values)} values for "
                                   f"{len(self.max4_regs)} registers")
            for reg, v in zip(self.max4_regs, values):
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ProgramError(f"max4[{reg}] at ratio {key} = {v!r}: not a count >= 0")
                info = layers.get(reg)
                if isinstance(info, dict) and v > int(info.get("channels", v)):
                    raise ProgramError(f"max4[{reg}] at ratio {key} = {v} exceeds the layer's "
                                       f"{info['channels']} input channels")

    # ------------------------------------------------------------------- I/O
    def _header(self) -> dict:
        return {
            "format": FORMAT,
            "n_instructions": len(self.instructions),
            "instructions": [isa.to_json_obj(x) for x in self.instructions],
            "regions": [{"name": r.name, "addr": r.addr, "dtype": r.array.dtype.name,
                         "shape": list(r.array.shape)} for r in self.regions.values()],
            "layers": self.layers, "max4_regs": self.max4_regs,
            "max4_tables": self.max4_tables, "inputs": self.inputs, "outputs": self.outputs,
            "meta": self.meta, "config": self.config,
        }

    def save(self, path) -> None:
        """Write the program atomically (a temporary file, then a rename), with a SHA-256 of
        its contents that ``load`` verifies."""
        import contextlib
        import os
        import tempfile

        header = json.dumps(self._header())
        arrays = {f"region_{i}": r.array for i, r in enumerate(self.regions.values())}
        digest = _digest(header, list(arrays.values()))
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                   dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, __program__=np.array(header),
                                    __sha256__=np.array(digest), **arrays)
                f.flush()
                os.fsync(f.fileno())
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path) -> Program:
        """Read a program file. A file that is not a program, is damaged (checksum) or is
        inconsistent raises ``ProgramFileError`` naming the file and the problem."""
        try:
            with np.load(path, allow_pickle=False) as z:
                names = set(z.files)
                for key in ("__program__", "__sha256__"):
                    if key not in names:
                        if key == "__sha256__" and "__program__" in names:
                            raise ProgramFileError(
                                f"{path}: no checksum (a program from an older version?): "
                                "compile it again with `flexiq compile`")
                        raise ProgramFileError(f"{path}: not a FlexiQ NPU program (no {key!r})")
                header = str(z["__program__"])
                digest = str(z["__sha256__"])
                arrays = []
                while f"region_{len(arrays)}" in names:
                    arrays.append(z[f"region_{len(arrays)}"])
        except ProgramFileError:
            raise
        except FileNotFoundError:
            raise ProgramFileError(f"program file {path} not found") from None
        except Exception as e:  # zip, zlib, EOF, npy-format and OS errors: a damaged file
            raise ProgramFileError(f"cannot read NPU program {path}: damaged or not a program "
                                   f"file ({type(e).__name__}: {e})") from None
        if _digest(header, arrays) != digest:
            raise ProgramFileError(f"{path}: checksum mismatch: the file was changed or "
                                   "damaged after it was written")
        try:
            head = json.loads(header)
            return cls._from_header(head, arrays, path)
        except ProgramFileError:
            raise
        except ProgramError as e:
            raise ProgramFileError(f"{path}: {e}") from None
        except Exception as e:  # a structurally wrong header
            raise ProgramFileError(f"{path}: inconsistent program ({type(e).__name__}: "
                                   f"{e})") from None

    @classmethod
    def _from_header(cls, head, arrays, path) -> Program:
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            fmt = head.get("format") if isinstance(head, dict) else None
            raise ProgramFileError(f"{path}: not a FlexiQ NPU program of this version "
                                   f"(format {fmt!r}, expected {FORMAT!r})")
        missing = [k for k in ("instructions", "regions", "layers", "max4_regs", "max4_tables",
                               "inputs", "outputs", "meta", "config") if k not in head]
        if missing:
            raise ProgramFileError(f"{path}: program header lacks {missing}")
        if head.get("n_instructions") != len(head["instructions"]):
            raise ProgramFileError(f"{path}: {len(head['instructions'])} instructions, the header "
                                   f"says {head.get('n_instructions')}")
        if len(head["regions"]) != len(arrays):
            raise ProgramFileError(f"{path}: {len(arrays)} region arrays for "
                                   f"{len(head['regions'])} regions")
        prog = cls([isa.from_json_obj(d, i) for i, d in enumerate(head["instructions"])],
                   layers=head["layers"], max4_regs=head["max4_regs"],
                   max4_tables=head["max4_tables"], inputs=head["inputs"],
                   outputs=head["outputs"], meta=head["meta"], config=head["config"])
        for i, (r, arr) in enumerate(zip(head["regions"], arrays)):
            if list(arr.shape) != list(r["shape"]) or arr.dtype.name != r["dtype"]:
                raise ProgramFileError(f"{path}: region {i} ({r['name']!r}) holds "
                                       f"{arr.dtype.name}{list(arr.shape)}, the header says "
                                       f"{r['dtype']}{list(r['shape'])}")
            if not isinstance(r["addr"], int) or r["addr"] < 0:
                raise ProgramFileError(f"{path}: region {r['name']!r} at bad address "
                                       f"{r['addr']!r}")
            prog.add_region(r["name"], arr, addr=r["addr"])
        prog.validate()
        prog.check_tables()
        if prog.config is not None:
            from .config import NPUConfig

            NPUConfig.from_dict(prog.config)
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
