"""On-chip SRAM buffers and the DRAM image, with bounds checks that name the culprit.

SRAM buffers hold integer values in int64 cells; their capacity and traffic are counted
in the buffer's element width (``inp``/``wgt`` 1 byte, ``acc``/``param`` 4 bytes).
DRAM is the program's set of named regions (numpy arrays at byte addresses); float32
regions are moved as their 32-bit patterns.
"""

from __future__ import annotations

import bisect

import numpy as np

from .errors import DRAMAddressError, SRAMOverflowError

WIDTH = {"inp": 1, "wgt": 1, "acc": 4, "param": 4}


class SRAM:
    """The four on-chip buffers and their traffic counters (bytes).

    ``values=False`` (timing-only runs): only the ``param`` buffer holds values (the
    tables whose contents decide access widths, e.g. a REORDER's permutation); ``block``
    on any other buffer checks bounds and counts traffic exactly as with values, and
    returns None.
    """

    def __init__(self, cfg, *, values: bool = True):
        self.cfg = cfg
        self.values = values
        self.size = {b: cfg.buffer_elems(b) for b in WIDTH}
        self.bufs = {b: np.zeros(self.size[b], dtype=np.int64) for b in WIDTH
                     if values or b == "param"}
        self.read_bytes = dict.fromkeys(WIDTH, 0)
        self.write_bytes = dict.fromkeys(WIDTH, 0)
        self.high_water = dict.fromkeys(WIDTH, 0)  # elements: end of the highest access
        self.touched = None

    def block(self, buf, addr, rows, cols, stride, where, *, write=False):
        """A [rows, cols] view at element ``addr`` with row ``stride`` (0: cols); None for a
        buffer without values (``values=False``)."""
        stride = stride or cols
        size = self.size[buf]
        end = addr + (rows - 1) * stride + cols if rows and cols else addr
        if addr < 0 or end > size:
            raise SRAMOverflowError(
                f"{where}: '{buf}' buffer overflow: elements [{addr}, {end}) but the buffer "
                f"holds {size} ({self.cfg.buffer_elems(buf) * WIDTH[buf] // 1024} KiB)")
        if stride < cols and rows > 1:
            raise SRAMOverflowError(f"{where}: '{buf}' row stride {stride} < row length {cols}")
        nbytes = rows * cols * WIDTH[buf]
        if end > self.high_water[buf]:
            self.high_water[buf] = end
        if self.touched is not None:  # what one instruction reaches (timing-run cache)
            self.touched[buf] = max(self.touched.get(buf, 0), end)
        if write:
            self.write_bytes[buf] += nbytes
        else:
            self.read_bytes[buf] += nbytes
        data = self.bufs.get(buf)
        if data is None:
            return None
        return np.lib.stride_tricks.as_strided(data[addr:], shape=(rows, cols),
                                               strides=(stride * 8, 8))

    def span(self, buf, addr, count, where, *, write=False):
        b = self.block(buf, addr, 1, count, count, where, write=write)
        return None if b is None else b[0]


class DRAM:
    """A working copy of the program's DRAM regions (``copy=False``: the program's own
    arrays, for runs that never write DRAM)."""

    def __init__(self, regions, *, copy: bool = True):
        self.regions = []
        for r in regions.values():
            # a timing-only run writes no DRAM, so it reads the program's arrays in place
            arr = np.array(r.array, copy=True) if copy else r.array
            self.regions.append((r.name, r.addr, arr))
        self.regions.sort(key=lambda t: t[1])
        self._bases = [base for _, base, _ in self.regions]
        self.read_bytes = 0
        self.write_bytes = 0

    def array(self, name):
        for n, _, a in self.regions:
            if n == name:
                return a
        raise KeyError(name)

    def block(self, addr, rows, cols, stride, where, *, view: bool = True):
        """(flat integer view [rows, cols], itemsize, region name) for a DMA (the view is
        None with ``view=False``: bounds checked only)."""
        # regions do not overlap: only the last one starting at or below addr can hold it
        i = bisect.bisect_right(self._bases, addr) - 1
        if i >= 0:
            name, base, arr = self.regions[i]
            if base <= addr < base + arr.nbytes:
                isz = arr.itemsize
                if (addr - base) % isz:
                    raise DRAMAddressError(f"{where}: DRAM address {addr} is not aligned to the "
                                           f"{isz}-byte elements of region '{name}'")
                e0 = (addr - base) // isz
                stride = stride or cols
                end = e0 + (rows - 1) * stride + cols
                if end > arr.size:
                    raise DRAMAddressError(
                        f"{where}: DMA runs past the end of DRAM region '{name}' (elements "
                        f"[{e0}, {end}) of {arr.size})")
                if not view:
                    return None, isz, name
                flat = arr.reshape(-1)
                if flat.dtype == np.float32:
                    flat = flat.view(np.int32)
                view = np.lib.stride_tricks.as_strided(
                    flat[e0:], shape=(rows, cols), strides=(stride * isz, isz))
                return view, isz, name
        raise DRAMAddressError(f"{where}: DRAM address {addr} lies in no region of the program")
