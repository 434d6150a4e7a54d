"""Per-layer records of a quantized model: GEMM layers and requantizing ops."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class GemmLayer:
    """One conv or Linear layer in integers.

    Weights ``w_codes`` keep the module's layout ([N, C/groups, kh, kw] or [N, C]); the
    priority ``order`` and the 4-bit count ``max4`` say which input channels run in 4 bits.
    ``priority`` is the quantizer's own channel order (quant/priority.py); attaching a
    selection replaces ``order``, never ``priority``, so a later search starts from the
    same space whatever was attached before.
    """

    name: str
    kind: str  # "conv" | "linear"
    in_channels: int
    out_channels: int
    w_codes: np.ndarray
    w_scale: np.ndarray
    bias: np.ndarray  # int64 at scale x_scale * w_scale[n]
    x_scale: float
    x_signed: bool
    x_range: np.ndarray  # [2, C] min/max codes from calibration
    x_mean_sq: np.ndarray  # [C] mean squared code
    out_scale: float
    out_signed: bool
    act: str | None
    lo: int
    hi: int
    m: np.ndarray  # [N] dyadic multipliers
    s: np.ndarray  # [N] shifts
    macs: int  # multiply-accumulates per sample
    groups: int = 1
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    kernel: tuple = (1, 1)
    eligible: bool = True
    why_8bit: str = ""
    group_size: int = 64
    order: np.ndarray = field(default=None)
    max4: int = 0
    priority: np.ndarray = field(default=None)

    @property
    def own_order(self) -> np.ndarray:
        """The quantizer's own channel order: ``priority`` (``order`` for a record made
        without it), whatever selection is attached."""
        return self.priority if self.priority is not None else self.order

    @property
    def selectable(self) -> bool:
        """Can a selection choose this layer's 4-bit channels (eligible and not grouped)?"""
        return self.eligible and self.groups == 1

    @property
    def n_groups(self) -> int:
        return -(-self.in_channels // self.group_size)

    def check_max4(self, n4: int) -> int:
        from .errors import ConfigError

        n4 = int(n4)
        if n4 and not self.eligible:
            raise ConfigError(f"layer '{self.name}' is kept in 8 bits ({self.why_8bit}); max4 must be 0")
        if not 0 <= n4 <= self.in_channels or (n4 % self.group_size and n4 != self.in_channels):
            raise ConfigError(
                f"layer '{self.name}': max4={n4} must be a multiple of its group size "
                f"{self.group_size} in [0, {self.in_channels}] (or all {self.in_channels})")
        return n4


@dataclass
class NodeQ:
    """Output quantization of one non-GEMM node, plus its op's integer constants."""

    scale: float
    signed: bool
    lo: int
    hi: int
    act: str | None = None
    consts: dict = field(default_factory=dict)
