"""Quantization configuration, with validation that names the offending field."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from numeric.extraction import EXTRACTIONS, WEIGHT_SHIFTS

from .errors import ConfigError


@dataclass
class QuantConfig:
    """How a model is quantized and lowered to mixed 4/8 bits.

    group_size: channels per 4-bit group (64 on the NPU). Layers narrower than it use 32
      or 16 (``small_groups``).
    extraction: "effective" (docs/numeric_contract.md) or "naive" (top 4 bits).
    dynamic: activation shifts from each image at run time instead of calibration.
    weight_shift: "group" (one shift per output channel and group) or "weight".
    observer: "minmax" or "percentile" (then ``percentile`` in (50, 100]).
    first_layer_8bit / head_8bit: keep the first GEMM and the classifier head in 8 bits.
    keep_8bit: further layer names (fx node names) kept in 8 bits.
    """

    group_size: int = 64
    small_groups: bool = True
    extraction: str = "effective"
    dynamic: bool = False
    weight_shift: str = "group"
    observer: str = "minmax"
    percentile: float = 99.99
    first_layer_8bit: bool = True
    head_8bit: bool = True
    keep_8bit: list = field(default_factory=list)
    calib_batches: int | None = None

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if not isinstance(self.group_size, int) or self.group_size <= 0 or self.group_size % 8:
            raise ConfigError(f"QuantConfig.group_size must be a positive multiple of 8, got {self.group_size!r}")
        if self.extraction not in EXTRACTIONS:
            raise ConfigError(f"QuantConfig.extraction must be 'effective' or 'naive', got {self.extraction!r}")
        if self.weight_shift not in WEIGHT_SHIFTS:
            raise ConfigError(f"QuantConfig.weight_shift must be 'group' or 'weight', got {self.weight_shift!r}")
        if self.observer not in ("minmax", "percentile"):
            raise ConfigError(f"QuantConfig.observer must be 'minmax' or 'percentile', got {self.observer!r}")
        if not 50.0 < float(self.percentile) <= 100.0:
            raise ConfigError(f"QuantConfig.percentile must lie in (50, 100], got {self.percentile!r}")
        if not isinstance(self.keep_8bit, (list, tuple)):
            raise ConfigError("QuantConfig.keep_8bit must be a list of layer names")
        if self.calib_batches is not None and self.calib_batches <= 0:
            raise ConfigError(f"QuantConfig.calib_batches must be positive, got {self.calib_batches!r}")

    def layer_group_size(self, channels: int) -> int:
        """Group size used by a layer with ``channels`` input channels."""
        g = self.group_size
        if self.small_groups:
            while g > 16 and channels < g:
                g //= 2
        return g

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> QuantConfig:
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise ConfigError(f"QuantConfig: unknown field {k!r} (known: {sorted(known)})")
        return cls(**d)
