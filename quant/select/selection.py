"""``Selection``: nested 4-bit channel selections for a ladder of ratios, saved as JSON.

The file is what the compiler and the runtime read::

    {"format": "flexiq-selection", "version": 1,
     "method": "evolutionary", "seed": 0, "budget": "macs",
     "ratios": [0.0, 0.25, ...],
     "orders": {"layer": [channel, ...], ...},     # one priority order per layer
     "group_sizes": {"layer": 16, ...},
     "levels": [{"ratio": 0.25, "max4": {"layer": n4, ...}, "fitness": 0.01,
                 "budget_share": 0.24, "mac_share": 0.22}, ...],
     "meta": {...}}                                 # search settings, timings, config

``max4`` at every ratio is a prefix of the layer's order in whole groups, and the 4-bit
set at a lower ratio is contained in the one at a higher ratio (docs/numeric_contract.md, "Nested ratios").
``budget_share`` is the 4-bit fraction of the eligible layers' MACs (or channels) that the
budget counts; ``mac_share`` the fraction of *all* GEMM MACs (``four_bit_mac_share``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from numeric.ratio import same_ratio

from ..errors import ConfigError, DataMissingError, SelectionFileError

FORMAT = "flexiq-selection"
VERSION = 1


@dataclass
class Selection:
    method: str
    ratios: list
    orders: dict  # layer -> list[int]
    levels: list  # per ratio: {"ratio", "max4", "fitness", "budget_share", "mac_share"}
    seed: int | None = None
    budget: str = "macs"
    group_sizes: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    # ---- the interface QuantizedModel.attach_selection uses ------------------------------
    def level(self, ratio: float) -> dict | None:
        for lv in self.levels:
            if same_ratio(lv["ratio"], ratio):
                return lv
        return None

    def max4_for_ratio(self, ratio: float) -> dict | None:
        """{layer: n4} at a ratio of the ladder; None for a ratio the selection lacks."""
        lv = self.level(ratio)
        return None if lv is None else dict(lv["max4"])

    def fitness(self, ratio: float) -> float | None:
        lv = self.level(ratio)
        return None if lv is None else lv.get("fitness")

    def counts(self) -> dict:
        """{ratio: {layer: n4}} for the whole ladder."""
        return {float(lv["ratio"]): dict(lv["max4"]) for lv in self.levels}

    def check(self) -> None:
        """Raise ``ConfigError`` unless the ladder is nested prefixes in whole groups."""
        prev = {}
        for lv in sorted(self.levels, key=lambda v: v["ratio"]):
            for name, n4 in lv["max4"].items():
                if name not in self.orders:
                    if n4:
                        raise ConfigError(f"selection: layer '{name}' has 4-bit channels but no order")
                    continue
                c = len(self.orders[name])
                g = int(self.group_sizes.get(name, 64))
                if not 0 <= n4 <= c or (n4 % g and n4 != c):
                    raise ConfigError(f"selection: layer '{name}' max4={n4} at ratio {lv['ratio']} "
                                      f"is not whole groups of {g} in [0, {c}]")
                if n4 < prev.get(name, 0):
                    raise ConfigError(f"selection: layer '{name}' loses 4-bit channels from ratio to "
                                      f"ratio {lv['ratio']} (not nested)")
                prev[name] = n4

    # ---- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "method": self.method,
            "seed": self.seed,
            "budget": self.budget,
            "ratios": [float(r) for r in self.ratios],
            "orders": {k: [int(i) for i in v] for k, v in self.orders.items()},
            "group_sizes": {k: int(v) for k, v in self.group_sizes.items()},
            "levels": [_plain(lv) for lv in self.levels],
            "meta": _plain(self.meta),
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "selection") -> Selection:
        """Build and check a selection; ``SelectionFileError`` for anything malformed."""
        try:
            return cls._from_dict(d)
        except SelectionFileError as e:
            raise SelectionFileError(f"{where}: {e}") from None
        except ConfigError as e:
            raise SelectionFileError(f"{where}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            what = f"missing field {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise SelectionFileError(f"{where}: malformed selection ({what})") from None

    @classmethod
    def _from_dict(cls, d: dict) -> Selection:
        if not isinstance(d, dict):
            raise SelectionFileError(f"expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ConfigError(f"not a FlexiQ selection file (format {d.get('format')!r})")
        if int(d.get("version", 0)) > VERSION:
            raise ConfigError(f"selection file version {d.get('version')} is newer than supported ({VERSION})")
        sel = cls(method=d["method"], ratios=[float(r) for r in d["ratios"]],
                  orders={k: list(map(int, v)) for k, v in d["orders"].items()},
                  levels=[dict(lv, max4={k: int(n) for k, n in lv["max4"].items()}) for lv in d["levels"]],
                  seed=d.get("seed"), budget=d.get("budget", "macs"),
                  group_sizes={k: int(v) for k, v in d.get("group_sizes", {}).items()},
                  meta=d.get("meta", {}))
        if not isinstance(sel.meta, dict):
            raise SelectionFileError("'meta' must be an object")
        for lv in sel.levels:
            if not isinstance(lv.get("ratio"), (int, float)) or not 0 <= lv["ratio"] <= 1:
                raise SelectionFileError(f"level ratio {lv.get('ratio')!r} is not in [0, 1]")
        if sorted(float(lv["ratio"]) for lv in sel.levels) != sorted(sel.ratios):
            raise SelectionFileError(f"levels {[lv['ratio'] for lv in sel.levels]} do not match "
                                     f"ratios {sel.ratios}")
        for name, g in sel.group_sizes.items():
            if g <= 0:
                raise SelectionFileError(f"group size of '{name}' is {g}, not positive")
        sel.check()
        return sel

    def save(self, path: str) -> None:
        """Write atomically (temporary file, then rename; removed on an interrupt)."""
        path = os.fspath(path)
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        tmp = f"{path}.tmp.{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                json.dump(self.to_dict(), f, indent=1)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    @classmethod
    def load(cls, path: str) -> Selection:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise DataMissingError(f"selection file {path!r} not found (make one with `flexiq select`)")
        try:
            with open(path) as f:
                d = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SelectionFileError(f"selection file {path!r} is not valid JSON: {exc}") from None
        except OSError as exc:
            raise SelectionFileError(f"selection file {path!r}: {exc.strerror}") from None
        return cls.from_dict(d, where=f"selection file {path!r}")

    def summary(self) -> str:
        lines = [f"selection: method={self.method} seed={self.seed} budget={self.budget}"]
        for lv in self.levels:
            fit = lv.get("fitness")
            fit_s = "-" if fit is None else f"{fit:.5f}"
            lines.append(f"  ratio {lv['ratio']:.3f}: budget share {lv.get('budget_share', 0):.3f}, "
                         f"MAC share {lv.get('mac_share', 0):.3f}, fitness {fit_s}")
        return "\n".join(lines)


def _plain(obj):
    """Numpy scalars/arrays -> JSON-native values."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
