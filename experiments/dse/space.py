"""The swept space: NPU configuration points from a grid, random samples or a TOML file.

A knob is any ``NPUConfig`` field (``rows``, ``dram_bytes_per_cycle``, ``timing``, ...), one
vector-op cost as ``vector_costs.OP``, or a quantizer knob (``weight_shift``: the shift
granularity, ``extraction``). ``group_size`` (G) is also the quantizer's group size: the
model is quantized once per G and quantizer knobs. A point is a dict knob -> value; its configuration
is the base configuration with those values. A point whose configuration is invalid is
kept, with the reason (``Point.error``), so the sweep reports it instead of stopping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
from dataclasses import dataclass

from npu_sim import NPUConfig
from npu_sim.config import DEFAULT_VECTOR_COSTS, read_toml
from quant.errors import FlexiQError


class SpaceError(FlexiQError):
    """The description of the design space is wrong (unknown knob, bad value or range)."""


#: Quantizer knobs that are not NPUConfig fields (the shift granularity, the extraction).
QUANT_KNOBS = ("weight_shift", "extraction")
#: Knobs that change the numerics: the rows then carry fidelity (docs/dse.md).
NUMERIC_KNOBS = ("group_size",) + QUANT_KNOBS
KNOBS = tuple(f.name for f in dataclasses.fields(NPUConfig) if f.name != "vector_costs") + \
    tuple(f"vector_costs.{op}" for op in DEFAULT_VECTOR_COSTS) + QUANT_KNOBS


@dataclass
class Point:
    """One configuration of the sweep."""

    knobs: dict
    config: NPUConfig | None   # None: invalid (see ``error``)
    error: str = ""
    quant: dict = dataclasses.field(default_factory=dict)  # QuantConfig fields of the point

    @property
    def config_id(self) -> str:
        return config_id(self.knobs)


def config_id(knobs: dict) -> str:
    """Stable 10-hex id of a point's knob values (the table's key)."""
    text = json.dumps({k: knobs[k] for k in sorted(knobs)}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _check_knob(name: str, where: str) -> None:
    if name not in KNOBS:
        raise SpaceError(f"{where}: unknown knob {name!r} (NPUConfig fields and "
                         f"vector_costs.OP; e.g. rows, cols, group_size, inp_kib)")


#: The kind of value each knob takes, from NPUConfig's defaults (the quantizer knobs: names).
_KIND = {**{f.name: type(f.default) for f in dataclasses.fields(NPUConfig)
            if f.name != "vector_costs"},
         **{f"vector_costs.{op}": int for op in DEFAULT_VECTOR_COSTS},
         **{k: str for k in QUANT_KNOBS}}


def _check_values(name: str, values, where: str) -> None:
    """A value of the wrong kind (text for a number, ...) is bad input, not an invalid
    combination: refused before the sweep, naming the knob."""
    kind = _KIND[name]
    for v in values:
        ok = (isinstance(v, bool) if kind is bool else
              isinstance(v, kind) and not isinstance(v, bool) if kind is int else
              isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else
              isinstance(v, kind))
        if not ok:
            raise SpaceError(f"{where}: {name} takes {kind.__name__} values, got {v!r}")


def _value(text: str):
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def parse_grid(items) -> dict:
    """``["rows=16,32", "timing=default,scalesim"]`` -> ``{"rows": [16, 32], ...}``."""
    grid = {}
    for item in items or []:
        if "=" not in item:
            raise SpaceError(f"--grid {item!r}: expected KNOB=V1,V2,...")
        k, v = item.split("=", 1)
        k = k.strip()
        _check_knob(k, f"--grid {item!r}")
        vals = [_value(x) for x in v.split(",") if x.strip()]
        if not vals:
            raise SpaceError(f"--grid {item!r}: no values")
        _check_values(k, vals, f"--grid {item!r}")
        grid[k] = vals
    return grid


def parse_ranges(items) -> dict:
    """``["rows=16:128", "clock_ghz=0.5:2"]`` -> ``{"rows": (16, 128), ...}`` (inclusive)."""
    out = {}
    for item in items or []:
        if "=" not in item or ":" not in item.split("=", 1)[1]:
            raise SpaceError(f"--range {item!r}: expected KNOB=LOW:HIGH")
        k, v = item.split("=", 1)
        k = k.strip()
        _check_knob(k, f"--range {item!r}")
        lo, hi = (_value(x) for x in v.split(":", 1))
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (lo, hi)) \
                or lo > hi:
            raise SpaceError(f"--range {item!r}: LOW and HIGH must be numbers, LOW <= HIGH")
        out[k] = (lo, hi)
    return out


def make_config(knobs: dict, base: dict | None = None) -> NPUConfig:
    d = NPUConfig().to_dict()
    d.update(base or {})
    for k, v in knobs.items():
        if k in QUANT_KNOBS:
            continue
        if k.startswith("vector_costs."):
            d["vector_costs"] = dict(d["vector_costs"], **{k.split(".", 1)[1]: v})
        else:
            d[k] = v
    return NPUConfig.from_dict(d)


def quant_of(knobs: dict, cfg: NPUConfig) -> dict:
    """The QuantConfig fields of a point: G from the configuration, the quantizer knobs."""
    from quant import QuantConfig

    q = {"group_size": cfg.group_size, **{k: knobs[k] for k in QUANT_KNOBS if k in knobs}}
    QuantConfig(**q)  # validates (ConfigError names the field)
    return q


def _point(knobs: dict, base) -> Point:
    try:
        cfg = make_config(knobs, base)
        return Point(dict(knobs), cfg, quant=quant_of(knobs, cfg))
    except FlexiQError as e:
        return Point(dict(knobs), None, str(e))


def grid_points(grid: dict, base: dict | None = None) -> list[Point]:
    """Every combination of the grid's values (the first knob varies slowest)."""
    keys = list(grid)
    return [_point(dict(zip(keys, combo)), base)
            for combo in itertools.product(*(grid[k] for k in keys))]


def random_points(n: int, seed: int, grid: dict, ranges: dict,
                  base: dict | None = None) -> list[Point]:
    """``n`` points: each knob drawn uniformly from its grid values or its range (integers
    for integer bounds, else floats); the same seed gives the same points."""
    if n <= 0:
        raise SpaceError(f"--random {n}: must be a positive number of points")
    if not grid and not ranges:
        raise SpaceError("--random needs knobs to draw (--grid values or --range LOW:HIGH)")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        knobs = {}
        for k in sorted(set(grid) | set(ranges)):
            if k in grid:
                knobs[k] = grid[k][rng.randrange(len(grid[k]))]
            else:
                lo, hi = ranges[k]
                knobs[k] = (rng.randint(lo, hi) if isinstance(lo, int) and isinstance(hi, int)
                            else rng.uniform(lo, hi))
        out.append(_point(knobs, base))
    return out


def dedupe(points: list[Point]) -> list[Point]:
    seen, out = set(), []
    for p in points:
        if p.config_id not in seen:
            seen.add(p.config_id)
            out.append(p)
    return out


def default_point(points: list[Point], base: dict | None = None) -> Point:
    """The default NPU (``NPUConfig()`` plus ``base``) as a point with the swept knobs."""
    keys = sorted({k for p in points for k in p.knobs})
    cfg = make_config({}, base).to_dict()
    from quant import QuantConfig

    qdef = QuantConfig()
    knobs = {k: (getattr(qdef, k) if k in QUANT_KNOBS
                 else cfg["vector_costs"][k.split(".", 1)[1]] if k.startswith("vector_costs.")
                 else cfg[k]) for k in keys}
    return _point(knobs, base)


@dataclass
class Space:
    """What a `flexiq dse` run sweeps."""

    points: list
    models: list
    ratios: list
    default_id: str
    base: dict

    @property
    def numeric(self) -> bool:
        """Does a swept knob change the numerics (then rows carry fidelity)?"""
        return any(len({repr(p.knobs.get(k)) for p in self.points}) > 1
                   for k in NUMERIC_KNOBS if any(k in p.knobs for p in self.points))


def load_toml(path) -> dict:
    """The TOML form: ``models``, ``ratios``, ``random``, ``seed`` and the tables ``grid``
    (knob = [values]), ``ranges`` (knob = [low, high]) and ``base`` (fixed NPUConfig fields).
    """
    data = read_toml(path, SpaceError)
    known = {"models", "ratios", "random", "seed", "grid", "ranges", "base"}
    for k in data:
        if k not in known:
            raise SpaceError(f"{path}: unknown key {k!r} (known: {sorted(known)})")
    for k in data.get("grid", {}):
        _check_knob(k, f"{path} [grid]")
        if not isinstance(data["grid"][k], list) or not data["grid"][k]:
            raise SpaceError(f"{path} [grid] {k}: expected a non-empty list of values")
        _check_values(k, data["grid"][k], f"{path} [grid]")
    models = data.get("models", [])
    if not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
        raise SpaceError(f"{path}: models must be a list of model names, got {models!r}")
    ratios = data.get("ratios", [])
    if not (isinstance(ratios, list) and all(isinstance(r, (int, float))
                                             and not isinstance(r, bool) for r in ratios)):
        raise SpaceError(f"{path}: ratios must be a list of numbers, got {ratios!r}")
    for k in ("random", "seed"):
        if k in data and (not isinstance(data[k], int) or isinstance(data[k], bool)):
            raise SpaceError(f"{path}: {k} must be an integer, got {data[k]!r}")
    ranges = {}
    for k, v in data.get("ranges", {}).items():
        _check_knob(k, f"{path} [ranges]")
        if not (isinstance(v, list) and len(v) == 2):
            raise SpaceError(f"{path} [ranges] {k}: expected [low, high]")
        ranges[k] = parse_ranges([f"{k}={v[0]}:{v[1]}"])[k]
    data["ranges"] = ranges
    return data


def build_space(models, ratios, *, grid=None, ranges=None, random_n=None, seed=0,
                base=None) -> Space:
    """The points of a sweep (grid, or ``random_n`` random draws), deduplicated, with the
    default NPU added when the space does not already hold it."""
    grid = grid or {}
    ranges = ranges or {}
    base = dict(base or {})
    try:
        make_config({}, base)
    except FlexiQError as e:
        raise SpaceError(f"base configuration: {e}") from None
    if not models:
        raise SpaceError("no models to sweep")
    if random_n:
        points = random_points(random_n, seed, grid, ranges, base)
    else:
        if ranges:
            raise SpaceError("ranges (LOW:HIGH) need --random N")
        points = grid_points(grid, base) if grid else []
    points = dedupe(points)
    default = default_point(points, base)
    if default.config_id not in {p.config_id for p in points}:
        points.append(default)
    return Space(points, list(models), sorted({float(r) for r in ratios}), default.config_id,
                 base)
