"""The NPU instruction set: opcodes, instruction dataclasses, validation, JSON and binary forms.

Every instruction goes to one of four queues (``load``, ``compute``, ``vector``,
``store``). ``wait`` names queues whose tokens it pops before starting, ``signal`` the
queues it pushes one token to when it completes (decoupled access/execute, as in VTA).
SRAM addresses are element indices into a buffer (``inp``/``wgt``: 1-byte elements,
``acc``/``param``: 4-byte elements); DRAM addresses are byte addresses of the program's
DRAM image. ``layer`` is an index into the program's layer tags (-1: untagged).
See docs/isa.md for the semantics and cycle cost of each instruction.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import struct
from dataclasses import dataclass
from typing import ClassVar

from .errors import ISAError

QUEUES = ("load", "compute", "vector", "store")
BUFFERS = ("inp", "wgt", "acc", "param")
ENUMS = {
    "buf": BUFFERS, "src_buf": BUFFERS, "dst_buf": BUFFERS, "a_buf": BUFFERS,
    "b_buf": BUFFERS, "inp_buf": BUFFERS, "w_buf": BUFFERS,
    "kind": ("avg", "max"), "weight_shift": ("group", "weight"), "w_layout": ("nk", "kn"),
    "on": QUEUES,
}
POSITIVE = {"rows", "cols", "in_h", "in_w", "in_c", "n", "kh", "kw", "stride", "dilation",
            "h", "w", "c", "group_size", "or_group"}


@dataclass(kw_only=True)
class Instr:
    """Fields every instruction has."""

    OP: ClassVar[str] = ""
    QUEUE: ClassVar[str] = ""
    wait: tuple = ()
    signal: tuple = ()
    layer: int = -1

    @property
    def queue(self) -> str:
        return self.QUEUE


@dataclass(kw_only=True)
class Nop(Instr):
    """Does nothing on queue ``on``; carries tokens."""

    OP: ClassVar[str] = "NOP"
    on: str = "compute"

    @property
    def queue(self) -> str:
        return self.on


@dataclass(kw_only=True)
class Load(Instr):
    """DMA DRAM -> SRAM: a 2-D strided block, with zero (or ``pad_value``) padding."""

    OP: ClassVar[str] = "LOAD"
    QUEUE: ClassVar[str] = "load"
    buf: str
    sram_addr: int
    dram_addr: int
    rows: int
    cols: int
    dram_stride: int = 0      # elements between DRAM rows (0: cols)
    sram_stride: int = 0      # elements between SRAM rows (0: pad_left + cols + pad_right)
    pad_top: int = 0
    pad_bottom: int = 0
    pad_left: int = 0
    pad_right: int = 0
    pad_value: int = 0


@dataclass(kw_only=True)
class Store(Instr):
    """DMA SRAM -> DRAM: a 2-D strided block."""

    OP: ClassVar[str] = "STORE"
    QUEUE: ClassVar[str] = "store"
    buf: str
    sram_addr: int
    dram_addr: int
    rows: int
    cols: int
    sram_stride: int = 0
    dram_stride: int = 0


@dataclass(kw_only=True)
class Gemm(Instr):
    """Weight-stationary GEMM/conv over an input tile; the sequencer issues the folds.

    Input ``[in_h, in_w, in_c]`` (channels-last, already padded) at ``inp_buf:inp_addr``;
    weights ``[n, kh, kw, in_c]`` (``w_layout="nk"``) or ``[in_c, n]`` (``"kn"``, 1x1) at
    ``w_buf:w_addr``; output rows ``out_h * out_w`` × ``n`` int32 at ``acc:acc_addr``
    (row stride ``acc_stride``, 0 = n), overwritten or accumulated. Channels ``[0, n4)``
    with ``n4 = clamp(max4[max4_reg] - ch_offset, 0, in_c)`` run as 4-bit folds.
    """

    OP: ClassVar[str] = "GEMM"
    QUEUE: ClassVar[str] = "compute"
    inp_buf: str = "inp"
    inp_addr: int
    in_h: int
    in_w: int = 1
    in_c: int
    kh: int = 1
    kw: int = 1
    stride: int = 1
    dilation: int = 1
    w_buf: str = "wgt"
    w_addr: int
    w_layout: str = "nk"
    n: int
    acc_addr: int
    acc_stride: int = 0
    accumulate: bool = False
    x_signed: bool = True
    max4_reg: int = -1        # -1: always 8-bit
    ch_offset: int = 0        # layer channel index of this tile's channel 0
    group_size: int = 64
    xs_addr: int = -1         # param: per-group activation shift (static) or OR mask (dynamic)
    ws_addr: int = -1         # param: weight shifts [groups, n] (weight_shift "group")
    dynamic: bool = False
    naive: bool = False
    weight_shift: str = "group"


@dataclass(kw_only=True)
class SetMax4(Instr):
    """Write ``value`` into register ``max4[reg]`` (the runtime ratio switch)."""

    OP: ClassVar[str] = "SETMAX4"
    QUEUE: ClassVar[str] = "compute"
    reg: int
    value: int


@dataclass(kw_only=True)
class _Writer(Instr):
    """A vector op writing codes ``[rows, cols]`` to ``dst``; optional dynamic-extraction
    OR-reduce of the written codes into ``param[or_addr + (or_ch0 + j) // or_group]``."""

    dst_buf: str = "inp"
    dst_addr: int
    dst_stride: int = 0
    rows: int
    cols: int
    or_addr: int = -1
    or_group: int = 64
    or_ch0: int = 0
    or_reset: bool = False


@dataclass(kw_only=True)
class Requant(_Writer):
    """``clamp((acc + bias[j]) * M[j] + 2^(s[j]-1)) >> s[j]``: GEMM epilogue (fused ReLU via lo/hi)."""

    OP: ClassVar[str] = "REQUANT"
    QUEUE: ClassVar[str] = "vector"
    src_buf: str = "acc"
    src_addr: int
    src_stride: int = 0
    bias_addr: int = -1
    mult_addr: int
    shift_addr: int
    lo: int
    hi: int


@dataclass(kw_only=True)
class Clamp(_Writer):
    """ReLU / ReLU6 on codes: ``clamp(x, lo, hi)``."""

    OP: ClassVar[str] = "CLAMP"
    QUEUE: ClassVar[str] = "vector"
    src_buf: str = "inp"
    src_addr: int
    src_stride: int = 0
    lo: int
    hi: int


@dataclass(kw_only=True)
class Add(_Writer):
    """Residual add: ``clamp((a*ma + b*mb + 2^(s-1)) >> s, lo, hi)`` (quant.int_ops.add)."""

    OP: ClassVar[str] = "ADD"
    QUEUE: ClassVar[str] = "vector"
    a_buf: str = "inp"
    a_addr: int
    a_stride: int = 0
    b_buf: str = "inp"
    b_addr: int
    b_stride: int = 0
    ma: int
    mb: int
    s: int
    lo: int
    hi: int


@dataclass(kw_only=True)
class Pool(Instr):
    """Max or average pool of ``[h, w, c]`` at ``src`` into ``[oh, ow, c]`` at ``dst``.

    Implicit padding ``pad`` (ignored by max, zeros counted by avg); avg multiplies the
    window sum by the dyadic ``(m, s)``. Global average pool: ``kh = h, kw = w``.
    """

    OP: ClassVar[str] = "POOL"
    QUEUE: ClassVar[str] = "vector"
    kind: str = "max"
    src_buf: str = "inp"
    src_addr: int
    dst_buf: str = "inp"
    dst_addr: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    stride: int = 1
    pad: int = 0
    m: int = 1
    s: int = 0
    lo: int = -128
    hi: int = 127
    or_addr: int = -1
    or_group: int = 64
    or_ch0: int = 0
    or_reset: bool = False


@dataclass(kw_only=True)
class Reorder(_Writer):
    """Channel gather: ``dst[r, j] = src[r, perm[j]]`` with ``perm`` in ``param``."""

    OP: ClassVar[str] = "REORDER"
    QUEUE: ClassVar[str] = "vector"
    src_buf: str = "inp"
    src_addr: int
    src_stride: int = 0
    perm_addr: int


@dataclass(kw_only=True)
class LayerNorm(_Writer):
    """quant.float_ops.layernorm over each row; gamma/beta float32 in ``param``."""

    OP: ClassVar[str] = "LAYERNORM"
    QUEUE: ClassVar[str] = "vector"
    src_buf: str = "inp"
    src_addr: int
    src_stride: int = 0
    gamma_addr: int
    beta_addr: int
    eps: float = 1e-5
    in_scale: float
    out_scale: float
    out_signed: bool = True


@dataclass(kw_only=True)
class Softmax(_Writer):
    """quant.float_ops.softmax over each row."""

    OP: ClassVar[str] = "SOFTMAX"
    QUEUE: ClassVar[str] = "vector"
    src_buf: str = "inp"
    src_addr: int
    src_stride: int = 0
    in_scale: float
    out_scale: float
    out_signed: bool = False


@dataclass(kw_only=True)
class Gelu(_Writer):
    """quant.float_ops.gelu elementwise."""

    OP: ClassVar[str] = "GELU"
    QUEUE: ClassVar[str] = "vector"
    src_buf: str = "inp"
    src_addr: int
    src_stride: int = 0
    in_scale: float
    out_scale: float
    out_signed: bool = True


@dataclass(kw_only=True)
class Finish(Instr):
    """End of the instruction stream (compute queue)."""

    OP: ClassVar[str] = "FINISH"
    QUEUE: ClassVar[str] = "compute"


OPCODES = {cls.OP: code for code, cls in enumerate(
    (Nop, Load, Store, Gemm, SetMax4, Requant, Clamp, Add, Pool, Reorder, LayerNorm,
     Softmax, Gelu, Finish))}
CLASSES = {cls.OP: cls for cls in (Nop, Load, Store, Gemm, SetMax4, Requant, Clamp, Add, Pool,
                                   Reorder, LayerNorm, Softmax, Gelu, Finish)}
BY_CODE = {code: CLASSES[op] for op, code in OPCODES.items()}


@functools.cache
def _fields(cls):
    return tuple(dataclasses.fields(cls))


# ----------------------------------------------------------------------- validation
class _Where:
    """``instruction i (OP)``, formatted only when an error message needs it."""

    __slots__ = ("ins", "i")

    def __init__(self, ins, i):
        self.ins, self.i = ins, i

    def __format__(self, spec):
        return f"instruction {self.i} ({getattr(self.ins, 'OP', type(self.ins).__name__)})"


def validate_instr(ins: Instr, i: int) -> None:
    """Check field types and values; raise ``ISAError`` naming instruction ``i``."""
    where = _Where(ins, i)
    if not isinstance(ins, Instr) or type(ins).OP not in CLASSES:
        raise ISAError(f"{where}: not an NPU instruction: {ins!r}")
    for f in _fields(type(ins)):
        v = getattr(ins, f.name)
        t = f.type
        if f.name in ("wait", "signal"):
            if not isinstance(v, (tuple, list)) or any(q not in QUEUES for q in v):
                raise ISAError(f"{where}: field {f.name} must list queues from {QUEUES}, "
                               f"got {v!r}")
            if ins.queue in v:
                raise ISAError(f"{where}: field {f.name} names its own queue {ins.queue!r}")
            continue
        if t == "bool":
            if not isinstance(v, bool):
                raise ISAError(f"{where}: field {f.name} must be a bool, got {v!r}")
        elif t == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise ISAError(f"{where}: field {f.name} must be an integer, got {v!r}")
            if f.name in POSITIVE and v <= 0:
                raise ISAError(f"{where}: field {f.name} must be > 0, got {v}")
            if (f.name.endswith("_stride") or f.name.startswith("pad")
                    or f.name in ("sram_addr", "dram_addr", "inp_addr", "w_addr", "acc_addr",
                                  "src_addr", "dst_addr", "a_addr", "b_addr", "ch_offset",
                                  "or_ch0", "s", "reg", "value", "perm_addr", "mult_addr",
                                  "shift_addr", "gamma_addr", "beta_addr")) \
                    and f.name != "pad_value" and v < 0:
                raise ISAError(f"{where}: field {f.name} must be >= 0, got {v}")
        elif t == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ISAError(f"{where}: field {f.name} must be a number, got {v!r}")
        elif t == "str":
            if v not in ENUMS.get(f.name, ()):
                raise ISAError(f"{where}: field {f.name} must be one of "
                               f"{ENUMS.get(f.name)}, got {v!r}")
    if isinstance(ins, (Load, Store)) and ins.buf not in BUFFERS:
        raise ISAError(f"{where}: bad buffer {ins.buf!r}")


def validate(instrs) -> None:
    for i, ins in enumerate(instrs):
        validate_instr(ins, i)


# ---------------------------------------------------------------------------- JSON
def to_json_obj(ins: Instr) -> dict:
    d = {"op": ins.OP}
    for f in _fields(type(ins)):
        v = getattr(ins, f.name)
        d[f.name] = list(v) if isinstance(v, tuple) else v
    return d


def from_json_obj(d, i: int = 0) -> Instr:
    if not isinstance(d, dict) or "op" not in d:
        raise ISAError(f"instruction {i}: expected an object with an 'op' field, got {d!r}")
    op = d["op"]
    cls = CLASSES.get(op)
    if cls is None:
        raise ISAError(f"instruction {i}: unknown opcode {op!r} (known: {sorted(CLASSES)})")
    names = {f.name for f in _fields(cls)}
    kw = {}
    for k, v in d.items():
        if k == "op":
            continue
        if k not in names:
            raise ISAError(f"instruction {i} ({op}): unknown field {k!r}")
        kw[k] = tuple(v) if k in ("wait", "signal") and isinstance(v, list) else v
    try:
        ins = cls(**kw)
    except TypeError as e:
        raise ISAError(f"instruction {i} ({op}): {e}") from None
    validate_instr(ins, i)
    return ins


def encode_json(instrs) -> str:
    return json.dumps([to_json_obj(x) for x in instrs])


def decode_json(text) -> list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ISAError(f"instruction stream is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise ISAError("instruction stream must be a JSON list")
    return [from_json_obj(d, i) for i, d in enumerate(data)]


# -------------------------------------------------------------------------- binary
_MAGIC = b"FQNPU1"


def _mask(queues) -> int:
    return sum(1 << QUEUES.index(q) for q in queues)


def encode_binary(instrs) -> bytes:
    """Binary form: magic, count, then per instruction an opcode byte and one 8-byte word
    per field (ints little-endian int64, floats float64, enums as index, tokens as masks)."""
    out = [_MAGIC, struct.pack("<I", len(instrs))]
    for i, ins in enumerate(instrs):
        validate_instr(ins, i)
        out.append(struct.pack("<B", OPCODES[ins.OP]))
        for f in _fields(type(ins)):
            v = getattr(ins, f.name)
            if f.name in ("wait", "signal"):
                out.append(struct.pack("<q", _mask(v)))
            elif f.type == "float":
                out.append(struct.pack("<d", float(v)))
            elif f.type == "str":
                out.append(struct.pack("<q", ENUMS[f.name].index(v)))
            else:
                out.append(struct.pack("<q", int(v)))
    return b"".join(out)


def decode_binary(data: bytes) -> list:
    if data[:len(_MAGIC)] != _MAGIC:
        raise ISAError("binary program: bad magic (not an NPU instruction stream)")
    pos = len(_MAGIC)
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    out = []
    for i in range(count):
        if pos >= len(data):
            raise ISAError(f"instruction {i}: binary stream truncated")
        code = data[pos]
        pos += 1
        cls = BY_CODE.get(code)
        if cls is None:
            raise ISAError(f"instruction {i}: unknown opcode {code}")
        kw = {}
        for f in _fields(cls):
            if pos + 8 > len(data):
                raise ISAError(f"instruction {i} ({cls.OP}): binary stream truncated")
            if f.type == "float":
                (v,) = struct.unpack_from("<d", data, pos)
            else:
                (v,) = struct.unpack_from("<q", data, pos)
            pos += 8
            if f.name in ("wait", "signal"):
                v = tuple(q for j, q in enumerate(QUEUES) if v >> j & 1)
            elif f.type == "str":
                choices = ENUMS[f.name]
                if not 0 <= v < len(choices):
                    raise ISAError(f"instruction {i} ({cls.OP}): field {f.name}: bad enum {v}")
                v = choices[v]
            elif f.type == "bool":
                v = bool(v)
            kw[f.name] = v
        ins = cls(**kw)
        validate_instr(ins, i)
        out.append(ins)
    return out


# ------------------------------------------------------------------------ printing
def format_instr(ins: Instr, layers=None) -> str:
    """One readable line: opcode, queue, non-default fields, tokens."""
    parts = []
    for f in _fields(type(ins)):
        if f.name in ("wait", "signal", "layer"):
            continue
        v = getattr(ins, f.name)
        default = f.default if f.default is not dataclasses.MISSING else object()
        if v != default:
            parts.append(f"{f.name}={v}")
    tok = ""
    if ins.wait:
        tok += " wait=" + ",".join(ins.wait)
    if ins.signal:
        tok += " signal=" + ",".join(ins.signal)
    tag = ""
    if ins.layer >= 0:
        name = layers[ins.layer] if layers and ins.layer < len(layers) else str(ins.layer)
        tag = f"  ; {name}"
    return f"{ins.OP:<9} [{ins.queue:<7}] " + " ".join(parts) + tok + tag
