"""NPU configuration (fields and defaults: docs/file_formats.md, "NPU configuration"); every number of the machine is a field here.

``NPUConfig.from_toml(path)`` / ``from_dict(d)`` validate every field and raise
``ConfigError`` naming the field; ``to_dict()`` round-trips.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

try:  # Python >= 3.11
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .errors import ConfigError


def read_toml(path, error=ConfigError, prefix: str = "") -> dict:
    """The TOML file ``path`` as a dict; ``error`` (one line, ``prefix`` first) when it cannot
    be read or is not valid TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{prefix}{path}: not valid TOML ({e})") from None
    except OSError as e:
        raise error(f"{prefix}cannot read {path}: {e}") from None

TIMINGS = ("default", "scalesim")

#: Upper bounds: beyond them a machine is not meaningful to simulate (or would not fit in
#: memory). Buffers are in KiB (1 GiB each at most).
LIMITS = {"rows": 1024, "cols": 1024, "group_size": 4096, "inp_kib": 1 << 20,
          "wgt_kib": 1 << 20, "acc_kib": 1 << 20, "param_kib": 1 << 20,
          "dram_bytes_per_cycle": 1 << 16, "vector_lanes": 1 << 16, "dram_latency": 1 << 20,
          "vector_startup": 1 << 20, "max4_write_cycles": 1 << 20, "instr_issue_cycles": 1 << 20}

#: Vector-unit cost per lane-step (cycles per ceil(elements / lanes)), per op.
DEFAULT_VECTOR_COSTS = {
    "requant": 1,    # bias + dyadic requantize + clamp (+ OR-reduce for dynamic extraction)
    "clamp": 1,      # ReLU / ReLU6 on codes
    "add": 2,        # residual add of two requantized tensors
    "pool": 1,       # per window element read
    "reorder": 1,    # channel gather
    "layernorm": 6,  # two reductions + normalize
    "softmax": 6,    # max, exp, sum, divide
    "gelu": 4,
}


@dataclass
class NPUConfig:
    """Parameters of the simulated NPU. Sizes of buffers are in KiB."""

    rows: int = 32                   # PE array rows (reduction / K)
    cols: int = 32                   # PE array columns (output channels / N)
    clock_ghz: float = 1.0
    group_size: int = 64             # G: channels per 4-bit group (2 * rows fills a fold);
    #                                  the compiler quantizes with it (then a multiple of 8)
    inp_kib: int = 256               # input (activation) buffer, 1 byte per element
    wgt_kib: int = 512               # weight buffer, 1 byte per element
    acc_kib: int = 256               # accumulator / output buffer, 4 bytes per element
    param_kib: int = 64              # table buffer (bias, multipliers, shifts), 4 bytes each
    dram_bytes_per_cycle: int = 32
    dram_latency: int = 100          # cycles from DMA issue to first byte
    vector_lanes: int = 32
    vector_startup: int = 4          # fixed cycles per vector instruction
    vector_costs: dict = field(default_factory=lambda: dict(DEFAULT_VECTOR_COSTS))
    max4_write_cycles: int = 4       # one max4 register write (runtime ratio switch)
    instr_issue_cycles: int = 1      # fixed cycles to issue any instruction
    double_buffer: bool = True       # weight double buffering in the PE array
    timing: str = "default"          # "default" or "scalesim"

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        ints_pos = ("rows", "cols", "group_size", "inp_kib", "wgt_kib", "acc_kib", "param_kib",
                    "dram_bytes_per_cycle", "vector_lanes")
        ints_nonneg = ("dram_latency", "vector_startup", "max4_write_cycles",
                       "instr_issue_cycles")
        for name in ints_pos + ints_nonneg:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"NPUConfig.{name} must be an integer, got {v!r}")
            if name in ints_pos and v <= 0:
                raise ConfigError(f"NPUConfig.{name} must be > 0, got {v}")
            if v < 0:
                raise ConfigError(f"NPUConfig.{name} must be >= 0, got {v}")
        for name, top in LIMITS.items():
            if getattr(self, name) > top:
                raise ConfigError(f"NPUConfig.{name} = {getattr(self, name)} is beyond what the "
                                  f"simulator models (at most {top})")
        if isinstance(self.clock_ghz, bool) or not isinstance(self.clock_ghz, (int, float)) \
                or not 0 < self.clock_ghz <= 1000:
            raise ConfigError(f"NPUConfig.clock_ghz must be a positive number, got "
                              f"{self.clock_ghz!r}")
        if not isinstance(self.double_buffer, bool):
            raise ConfigError(f"NPUConfig.double_buffer must be true or false, got "
                              f"{self.double_buffer!r}")
        if self.timing not in TIMINGS:
            raise ConfigError(f"NPUConfig.timing must be one of {TIMINGS}, got {self.timing!r}")
        if not isinstance(self.vector_costs, dict):
            raise ConfigError("NPUConfig.vector_costs must be a table of op = cycles")
        for op, c in self.vector_costs.items():
            if op not in DEFAULT_VECTOR_COSTS:
                raise ConfigError(f"NPUConfig.vector_costs.{op}: unknown vector op "
                                  f"(known: {sorted(DEFAULT_VECTOR_COSTS)})")
            if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 1 << 20:
                raise ConfigError(f"NPUConfig.vector_costs.{op} must be an integer >= 0, "
                                  f"got {c!r}")
        for op, c in DEFAULT_VECTOR_COSTS.items():
            self.vector_costs.setdefault(op, c)

    # ------------------------------------------------------------- conversion
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["vector_costs"] = dict(self.vector_costs)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NPUConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"NPUConfig: expected a table of fields, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for k in d:
            if k not in known:
                raise ConfigError(f"NPUConfig: unknown field {k!r} (known: {sorted(known)})")
        d = dict(d)
        if "vector_costs" in d and isinstance(d["vector_costs"], dict):
            d["vector_costs"] = dict(d["vector_costs"])
        if "clock_ghz" in d and isinstance(d["clock_ghz"], int) and not isinstance(
                d["clock_ghz"], bool):
            d["clock_ghz"] = float(d["clock_ghz"])
        return cls(**d)

    @classmethod
    def from_toml(cls, path) -> NPUConfig:
        data = read_toml(path, ConfigError, "NPUConfig: ")
        data = data.get("npu", data)
        return cls.from_dict(data)

    def replace(self, **changes) -> NPUConfig:
        d = self.to_dict()
        d.update(changes)
        return NPUConfig.from_dict(d)

    # ---------------------------------------------------------------- derived
    def buffer_elems(self, buf: str) -> int:
        """Capacity of an on-chip buffer in elements."""
        kib, width = {"inp": (self.inp_kib, 1), "wgt": (self.wgt_kib, 1),
                      "acc": (self.acc_kib, 4), "param": (self.param_kib, 4)}[buf]
        return kib * 1024 // width

    @property
    def effective_double_buffer(self) -> bool:
        return self.double_buffer and self.timing != "scalesim"
