"""Where tensors live: DRAM regions in channels-last layout, and the SRAM partition.

Every activation tensor of the IR gets a DRAM region holding its codes (int8 for signed,
uint8 for unsigned) in *physical* layout: feature maps NHWC (logical NCHW), everything
else as logical, with the channel axis last holding the channels in the tensor's memory
order (``perm``). A reshape that does not move data aliases its input's region.

SRAM: each buffer is cut into two slots (double buffering) per use; the per-layer table
area of ``param`` sits below a persistent area for dynamic-extraction OR masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def phys_shape(shape: tuple, fmap: bool = False) -> tuple:
    """Physical shape: a feature map (logical NCHW) is stored NHWC; others as logical."""
    shape = tuple(int(s) for s in shape)
    if fmap:
        return (shape[0], shape[2], shape[3], shape[1])
    return shape


def to_phys(a: np.ndarray, perm=None, fmap: bool = False) -> np.ndarray:
    """Logical array -> physical layout (channels last, memory channel order)."""
    a = np.asarray(a)
    if fmap:
        a = a.transpose(0, 2, 3, 1)
    if perm is not None:
        a = a[..., perm]
    return np.ascontiguousarray(a)


def from_phys(a: np.ndarray, perm=None, fmap: bool = False) -> np.ndarray:
    """Physical layout -> logical array."""
    a = np.asarray(a)
    if perm is not None:
        inv = np.argsort(perm)
        a = a[..., inv]
    if fmap:
        a = a.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(a)


@dataclass
class Tensor:
    """An activation tensor in DRAM."""

    name: str
    region: str
    shape: tuple  # logical
    signed: bool
    scale: float
    perm: np.ndarray | None = None
    fmap: bool = False  # a feature map stored NHWC

    @property
    def phys(self) -> tuple:
        return phys_shape(self.shape, self.fmap)

    @property
    def channels(self) -> int:
        return self.phys[-1]

    @property
    def rows(self) -> int:
        """Rows of the [rows, channels] view of the whole tensor."""
        return int(np.prod(self.phys[:-1]))

    @property
    def dtype(self) -> str:
        return "int8" if self.signed else "uint8"


class SramPlan:
    """Fixed slots of each on-chip buffer (element offsets)."""

    def __init__(self, cfg, mask_entries: int):
        self.cfg = cfg
        inp = cfg.buffer_elems("inp")
        self.in_slot = inp * 3 // 8
        self.out_slot = inp // 8
        self.in_addr = [0, self.in_slot]
        self.out_addr = [2 * self.in_slot, 2 * self.in_slot + self.out_slot]
        wgt = cfg.buffer_elems("wgt")
        self.w_slot = wgt // 2
        self.w_addr = [0, self.w_slot]
        acc = cfg.buffer_elems("acc")
        self.acc_slot = acc // 2
        self.acc_addr = [0, self.acc_slot]
        param = cfg.buffer_elems("param")
        self.mask_base = param - mask_entries
        self.t_slot = self.mask_base // 2
        self.t_addr = [0, self.t_slot]
