"""The NPU instruction set: opcodes, instruction dataclasses, validation, JSON and binary forms.

Every instruction goes to one of four queues (``load``, ``compute``, ``vector``,
``store``). ``wait`` names queues whose tokens it pops before starting, ``signal`` the
queues it pushes one token to when it completes (decoupled access/execute, as in VTA).
SRAM addresses are element indices into a buffer (``inp``/``wgt``: 1-byte elements,
``acc``/``param``: 4-byte elements); DRAM addresses are byte addresses of the program's
DRAM image. ``layer`` is an index into the program's layer tags (-1: untagged).
See docs/isa.md for the semantics and cycle cost of each instruction.

Each instruction class declares its fields once, in ``FIELDS``, as typed field objects
(``Size``, ``Natural``, ``Int``, ``Bool``, ``Float``, ``Enum``, ``Tokens``; shared groups
such as an operand's ``*_buf/*_addr/*_stride`` or the OR-reduce fields are built by one
function and reused). Declaring the subclass makes it a keyword-only dataclass with those fields after
the inherited ones; validation, JSON and the binary encoding are all read off the
declarations. Each class states its binary opcode ``OPCODE`` explicitly: the numbers are
the binary format (pinned by ``tests/npu_sim/golden/isa_all_instructions.bin``) and never
change when a class is added.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import MISSING
from typing import ClassVar

from .errors import ISAError

QUEUES = ("load", "compute", "vector", "store")
BUFFERS = ("inp", "wgt", "acc", "param")


# --------------------------------------------------------------------------- fields
class Field:
    """One declared instruction field: name, default (``MISSING``: required) and kind.

    The kind (the subclass) fixes the Python type, the value check and the 8-byte word
    of the binary form (``WORD``: ``q`` little-endian int64, ``d`` float64)."""

    TYPE: ClassVar[type] = int
    WORD: ClassVar[str] = "q"

    def __init__(self, name: str, default=MISSING):
        self.name, self.default = name, default

    def problem(self, v, ins) -> str | None:
        """Why ``v`` is not a valid value of this field in ``ins`` (None: it is)."""
        raise NotImplementedError

    def to_word(self, v):
        return int(v)

    def from_word(self, w):
        return w

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class Int(Field):
    """A signed integer; ``MIN`` (when set) is its smallest allowed value."""

    MIN: ClassVar[int | None] = None

    def problem(self, v, ins):
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be an integer, got {v!r}"
        if self.MIN is not None and v < self.MIN:
            return f"must be {'> 0' if self.MIN == 1 else '>= 0'}, got {v}"
        return None


class Size(Int):
    """A count or extent: > 0 (rows, channels, kernel size, stride, group size)."""

    MIN = 1


class Natural(Int):
    """>= 0: an SRAM or DRAM address, stride, padding, shift amount or register number."""

    MIN = 0


class Bool(Field):
    TYPE = bool

    def problem(self, v, ins):
        return None if isinstance(v, bool) else f"must be a bool, got {v!r}"

    def from_word(self, w):
        return bool(w)


class Float(Field):
    TYPE = float
    WORD = "d"

    def problem(self, v, ins):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"must be a number, got {v!r}"
        return None

    def to_word(self, v):
        return float(v)


class Enum(Field):
    """One of ``choices``; encoded as its index."""

    TYPE = str

    def __init__(self, name: str, choices: tuple, default=MISSING):
        super().__init__(name, default)
        self.choices = choices

    def problem(self, v, ins):
        return None if v in self.choices else f"must be one of {self.choices}, got {v!r}"

    def to_word(self, v):
        return self.choices.index(v)

    def from_word(self, w):
        if not 0 <= w < len(self.choices):
            raise ValueError(f"bad enum {w}")
        return self.choices[w]


class Tokens(Field):
    """A tuple of queue names (token channels); encoded as a bit mask over ``QUEUES``."""

    TYPE = tuple

    def problem(self, v, ins):
        if not isinstance(v, (tuple, list)) or any(q not in QUEUES for q in v):
            return f"must list queues from {QUEUES}, got {v!r}"
        if ins.queue in v:
            return f"names its own queue {ins.queue!r}"
        return None

    def to_word(self, v):
        return sum(1 << QUEUES.index(q) for q in v)

    def from_word(self, w):
        return tuple(q for j, q in enumerate(QUEUES) if w >> j & 1)


# ----------------------------------------------------------------- shared field groups
def operand(prefix: str, buf: str, *, stride: bool = True) -> tuple:
    """An SRAM block: ``<prefix>_buf`` (default ``buf``), ``<prefix>_addr`` and, with
    ``stride``, ``<prefix>_stride`` (elements between rows, 0: packed)."""
    fields = (Enum(f"{prefix}_buf", BUFFERS, buf), Natural(f"{prefix}_addr"))
    return fields + (Natural(f"{prefix}_stride", 0),) if stride else fields


# dynamic extraction: OR-reduce the written codes into param[or_addr + (or_ch0 + j) // or_group]
OR_REDUCE = (Int("or_addr", -1), Size("or_group", 64), Natural("or_ch0", 0),
             Bool("or_reset", False))
# a vector op writing codes [rows, cols] to dst (with the optional OR-reduce)
WRITER = (*operand("dst", "inp"), Size("rows"), Size("cols"), *OR_REDUCE)


def float_io(out_signed: bool) -> tuple:
    """The scales of a float vector op (numeric.float_ops) and the signedness of its codes."""
    return Float("in_scale"), Float("out_scale"), Bool("out_signed", out_signed)


# ----------------------------------------------------------------------- instructions
_REGISTRY: dict[int, type] = {}


def _declare(cls) -> None:
    """Make ``cls`` a keyword-only dataclass whose fields are the inherited ones followed
    by its own ``FIELDS``, and record ``cls.ALL_FIELDS`` (all of them, in encoding order)."""
    own = cls.__dict__.get("FIELDS", ())
    inherited = getattr(cls, "ALL_FIELDS", ())
    names = [f.name for f in inherited + own]
    if len(set(names)) != len(names):
        raise TypeError(f"{cls.__name__}: a field is declared twice: {names}")
    cls.__annotations__ = {f.name: f.TYPE for f in own}
    for f in own:
        if f.default is not MISSING:
            setattr(cls, f.name, f.default)
    dataclasses.dataclass(kw_only=True)(cls)
    cls.ALL_FIELDS = inherited + own


class Instr:
    """Fields every instruction has. A subclass declares ``OP`` (its name), ``OPCODE``
    (its binary opcode, fixed forever), ``QUEUE`` and its own ``FIELDS``."""

    OP: ClassVar[str] = ""
    OPCODE: ClassVar[int] = -1
    QUEUE: ClassVar[str] = ""
    FIELDS: ClassVar[tuple] = (Tokens("wait", ()), Tokens("signal", ()), Int("layer", -1))
    ALL_FIELDS: ClassVar[tuple] = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _declare(cls)
        if not 0 <= cls.OPCODE <= 255 or cls.OPCODE in _REGISTRY or not cls.OP or \
                cls.OP in {c.OP for c in _REGISTRY.values()}:
            raise TypeError(f"{cls.__name__}: opcode {cls.OPCODE} / name {cls.OP!r} is "
                            f"missing, out of range or taken")
        _REGISTRY[cls.OPCODE] = cls

    @property
    def queue(self) -> str:
        return self.QUEUE


_declare(Instr)


class Nop(Instr):
    """Does nothing on queue ``on``; carries tokens."""

    OP, OPCODE = "NOP", 0
    FIELDS = (Enum("on", QUEUES, "compute"),)

    @property
    def queue(self) -> str:
        return self.on


class Load(Instr):
    """DMA DRAM -> SRAM: a 2-D strided block, with zero (or ``pad_value``) padding.

    ``dram_stride``: elements between DRAM rows (0: ``cols``); ``sram_stride``: elements
    between SRAM rows (0: ``pad_left + cols + pad_right``)."""

    OP, OPCODE, QUEUE = "LOAD", 1, "load"
    FIELDS = (Enum("buf", BUFFERS), Natural("sram_addr"), Natural("dram_addr"), Size("rows"),
              Size("cols"), Natural("dram_stride", 0), Natural("sram_stride", 0),
              Natural("pad_top", 0), Natural("pad_bottom", 0), Natural("pad_left", 0),
              Natural("pad_right", 0), Int("pad_value", 0))


class Store(Instr):
    """DMA SRAM -> DRAM: a 2-D strided block."""

    OP, OPCODE, QUEUE = "STORE", 2, "store"
    FIELDS = (Enum("buf", BUFFERS), Natural("sram_addr"), Natural("dram_addr"), Size("rows"),
              Size("cols"), Natural("sram_stride", 0), Natural("dram_stride", 0))


class Gemm(Instr):
    """Weight-stationary GEMM/conv over an input tile; the sequencer issues the folds.

    Input ``[in_h, in_w, in_c]`` (channels-last, already padded) at ``inp_buf:inp_addr``;
    weights ``[n, kh, kw, in_c]`` (``w_layout="nk"``) or ``[in_c, n]`` (``"kn"``, 1x1) at
    ``w_buf:w_addr``; output rows ``out_h * out_w`` × ``n`` int32 at ``acc:acc_addr``
    (row stride ``acc_stride``, 0 = n), overwritten or accumulated. Channels ``[0, n4)``
    with ``n4 = clamp(max4[max4_reg] - ch_offset, 0, in_c)`` run as 4-bit folds.
    ``max4_reg`` -1: always 8-bit; ``ch_offset``: layer channel index of this tile's
    channel 0; ``xs_addr``: param address of the per-group activation shifts (static) or
    OR masks (``dynamic``); ``ws_addr``: weight shifts ``[groups, n]`` (``weight_shift``
    ``"group"``).
    """

    OP, OPCODE, QUEUE = "GEMM", 3, "compute"
    FIELDS = (*operand("inp", "inp", stride=False), Size("in_h"), Size("in_w", 1),
              Size("in_c"), Size("kh", 1), Size("kw", 1), Size("stride", 1),
              Size("dilation", 1), *operand("w", "wgt", stride=False),
              Enum("w_layout", ("nk", "kn"), "nk"), Size("n"), Natural("acc_addr"),
              Natural("acc_stride", 0), Bool("accumulate", False), Bool("x_signed", True),
              Int("max4_reg", -1), Natural("ch_offset", 0), Size("group_size", 64),
              Int("xs_addr", -1), Int("ws_addr", -1), Bool("dynamic", False),
              Bool("naive", False), Enum("weight_shift", ("group", "weight"), "group"))


class SetMax4(Instr):
    """Write ``value`` into register ``max4[reg]`` (the runtime ratio switch)."""

    OP, OPCODE, QUEUE = "SETMAX4", 4, "compute"
    FIELDS = (Natural("reg"), Natural("value"))


class Requant(Instr):
    """``clamp((acc + bias[j]) * M[j] + 2^(s[j]-1)) >> s[j]``: GEMM epilogue (fused ReLU via lo/hi)."""

    OP, OPCODE, QUEUE = "REQUANT", 5, "vector"
    FIELDS = (*WRITER, *operand("src", "acc"), Int("bias_addr", -1), Natural("mult_addr"),
              Natural("shift_addr"), Int("lo"), Int("hi"))


class Clamp(Instr):
    """ReLU / ReLU6 on codes: ``clamp(x, lo, hi)``."""

    OP, OPCODE, QUEUE = "CLAMP", 6, "vector"
    FIELDS = (*WRITER, *operand("src", "inp"), Int("lo"), Int("hi"))


class Add(Instr):
    """Residual add: ``clamp((a*ma + b*mb + 2^(s-1)) >> s, lo, hi)`` (numeric.int_ops.add)."""

    OP, OPCODE, QUEUE = "ADD", 7, "vector"
    FIELDS = (*WRITER, *operand("a", "inp"), *operand("b", "inp"), Int("ma"), Int("mb"),
              Natural("s"), Int("lo"), Int("hi"))


class Pool(Instr):
    """Max or average pool of ``[h, w, c]`` at ``src`` into ``[oh, ow, c]`` at ``dst``.

    Implicit padding ``pad`` (ignored by max, zeros counted by avg); avg multiplies the
    window sum by the dyadic ``(m, s)``. Global average pool: ``kh = h, kw = w``.
    """

    OP, OPCODE, QUEUE = "POOL", 8, "vector"
    FIELDS = (Enum("kind", ("avg", "max"), "max"), *operand("src", "inp", stride=False),
              *operand("dst", "inp", stride=False), Size("h"), Size("w"), Size("c"),
              Size("kh"), Size("kw"), Size("stride", 1), Natural("pad", 0), Int("m", 1),
              Natural("s", 0), Int("lo", -128), Int("hi", 127), *OR_REDUCE)


class Reorder(Instr):
    """Channel gather: ``dst[r, j] = src[r, perm[j]]`` with ``perm`` in ``param``."""

    OP, OPCODE, QUEUE = "REORDER", 9, "vector"
    FIELDS = (*WRITER, *operand("src", "inp"), Natural("perm_addr"))


class LayerNorm(Instr):
    """numeric.float_ops.layernorm over each row; gamma/beta float32 in ``param``."""

    OP, OPCODE, QUEUE = "LAYERNORM", 10, "vector"
    FIELDS = (*WRITER, *operand("src", "inp"), Natural("gamma_addr"), Natural("beta_addr"),
              Float("eps", 1e-5), *float_io(out_signed=True))


class Softmax(Instr):
    """numeric.float_ops.softmax over each row."""

    OP, OPCODE, QUEUE = "SOFTMAX", 11, "vector"
    FIELDS = (*WRITER, *operand("src", "inp"), *float_io(out_signed=False))


class Gelu(Instr):
    """numeric.float_ops.gelu elementwise."""

    OP, OPCODE, QUEUE = "GELU", 12, "vector"
    FIELDS = (*WRITER, *operand("src", "inp"), *float_io(out_signed=True))


class Finish(Instr):
    """End of the instruction stream (compute queue)."""

    OP, OPCODE, QUEUE = "FINISH", 13, "compute"


BY_CODE = dict(sorted(_REGISTRY.items()))
CLASSES = {cls.OP: cls for cls in BY_CODE.values()}
OPCODES = {cls.OP: code for code, cls in BY_CODE.items()}
_NAMES = {cls: frozenset(f.name for f in cls.ALL_FIELDS) for cls in BY_CODE.values()}
_TOKENS = frozenset(f.name for f in Instr.ALL_FIELDS if isinstance(f, Tokens))


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
    if not isinstance(ins, Instr) or CLASSES.get(type(ins).OP) is not type(ins):
        raise ISAError(f"{_Where(ins, i)}: not an NPU instruction: {ins!r}")
    for f in ins.ALL_FIELDS:
        why = f.problem(getattr(ins, f.name), ins)
        if why is not None:
            raise ISAError(f"{_Where(ins, i)}: field {f.name} {why}")


def validate(instrs) -> None:
    for i, ins in enumerate(instrs):
        validate_instr(ins, i)


# ---------------------------------------------------------------------------- JSON
def to_json_obj(ins: Instr) -> dict:
    d = {"op": ins.OP}
    for f in ins.ALL_FIELDS:
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
    names = _NAMES[cls]
    kw = {}
    for k, v in d.items():
        if k == "op":
            continue
        if k not in names:
            raise ISAError(f"instruction {i} ({op}): unknown field {k!r}")
        kw[k] = tuple(v) if k in _TOKENS and isinstance(v, list) else v
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
# per class: the words after the opcode byte, one 8-byte word per field in ALL_FIELDS order
_RECORD = {cls: struct.Struct("<" + "".join(f.WORD for f in cls.ALL_FIELDS))
           for cls in BY_CODE.values()}


def encode_binary(instrs) -> bytes:
    """Binary form: magic, count, then per instruction an opcode byte and one 8-byte word
    per field (ints little-endian int64, floats float64, enums as index, tokens as masks)."""
    out = [_MAGIC, struct.pack("<I", len(instrs))]
    for i, ins in enumerate(instrs):
        validate_instr(ins, i)
        cls = type(ins)
        out.append(bytes((cls.OPCODE,)))
        out.append(_RECORD[cls].pack(*(f.to_word(getattr(ins, f.name)) for f in cls.ALL_FIELDS)))
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
        for f in cls.ALL_FIELDS:
            if pos + 8 > len(data):
                raise ISAError(f"instruction {i} ({cls.OP}): binary stream truncated")
            (w,) = struct.unpack_from("<" + f.WORD, data, pos)
            pos += 8
            try:
                kw[f.name] = f.from_word(w)
            except ValueError as e:
                raise ISAError(f"instruction {i} ({cls.OP}): field {f.name}: {e}") from None
        ins = cls(**kw)
        validate_instr(ins, i)
        out.append(ins)
    return out


# ------------------------------------------------------------------------ printing
def format_instr(ins: Instr, layers=None) -> str:
    """One readable line: opcode, queue, non-default fields, tokens."""
    parts = []
    for f in ins.ALL_FIELDS:
        if f.name in ("wait", "signal", "layer"):
            continue
        v = getattr(ins, f.name)
        if f.default is MISSING or v != f.default:
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
