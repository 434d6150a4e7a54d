"""SCALE-Sim topology CSVs: the conv form and the GEMM (M, N, K) form.

Conv rows: ``name, IFMAP height, IFMAP width, filter height, filter width, channels,
filters, stride[, N:M],`` (one stride for both directions, no padding: the IFMAP is the
padded input). GEMM rows: ``name, M, N, K[, N:M],``; SCALE-Sim maps a GEMM onto a conv with
an ``M x K`` IFMAP and ``N`` filters of ``1 x K``, and so does ``read_topology``. The first
line is a header and is skipped; a layer whose name contains ``DP`` is a depthwise conv,
expanded into one single-channel layer per channel named ``<name>Channel_<i>``, as
SCALE-Sim does. Rows end with a comma; a row without one is read the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from quant.errors import ConfigError

from .config import UnsupportedScaleSimError

CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
               "Channels, Num Filter, Strides,")
GEMM_HEADER = "Layer, M, N, K,"


@dataclass(frozen=True)
class Layer:
    """One topology layer in SCALE-Sim's conv terms."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filt_h: int
    filt_w: int
    channels: int
    filters: int
    stride_h: int = 1
    stride_w: int = 1

    @property
    def ofmap_h(self) -> int:
        return -(-(self.ifmap_h - self.filt_h + self.stride_h) // self.stride_h)

    @property
    def ofmap_w(self) -> int:
        return -(-(self.ifmap_w - self.filt_w + self.stride_w) // self.stride_w)

    @property
    def gemm_m(self) -> int:
        """Output pixels: the rows streamed through the array per fold (SCALE-Sim's T)."""
        return self.ofmap_h * self.ofmap_w

    @property
    def gemm_k(self) -> int:
        """Window size: the reduction length (SCALE-Sim's S_r for weight stationary)."""
        return self.filt_h * self.filt_w * self.channels

    @property
    def gemm_n(self) -> int:
        return self.filters

    @property
    def macs(self) -> int:
        return self.gemm_m * self.gemm_k * self.gemm_n

    @classmethod
    def gemm(cls, name: str, m: int, n: int, k: int) -> Layer:
        return cls(name, m, k, 1, k, 1, n, 1, 1)


def _fields(line: str) -> list[str]:
    parts = [p.strip() for p in line.split(",")]
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _ints(parts, names, where):
    out = []
    for text, name in zip(parts, names):
        try:
            v = int(text)
        except ValueError:
            raise ConfigError(f"{where}: {name} must be an integer, got {text!r}") from None
        if v <= 0:
            raise ConfigError(f"{where}: {name} must be > 0, got {v}")
        out.append(v)
    return out


def _check_dense(text, where):
    ratio = text.split(":")
    try:
        n, m = (int(t) for t in ratio)
    except ValueError:
        raise ConfigError(f"{where}: sparsity ratio must be N:M, got {text!r}") from None
    if n != m:
        raise UnsupportedScaleSimError(f"{where}: sparsity ratio {text} is not modeled "
                                       f"(dense layers only, 1:1)")


CONV_FIELDS = ("IFMAP height", "IFMAP width", "filter height", "filter width", "channels",
               "num filter", "stride")
GEMM_FIELDS = ("M", "N", "K")


def read_topology(path, kind: str = "conv") -> list[Layer]:
    """Layers of a SCALE-Sim topology file (``kind`` ``conv`` or ``gemm``, SCALE-Sim's ``-i``)."""
    if kind not in ("conv", "gemm"):
        raise ConfigError(f"topology type must be conv or gemm, got {kind!r}")
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigError(f"cannot read topology {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    want = CONV_FIELDS if kind == "conv" else GEMM_FIELDS
    layers: list[Layer] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        parts = _fields(line)
        if len(parts) not in (len(want) + 1, len(want) + 2):
            raise ConfigError(f"{where}: expected {len(want) + 1} fields (name, "
                              f"{', '.join(want)}) and an optional N:M ratio, got {len(parts)}"
                              f" (use -i {'gemm' if kind == 'conv' else 'conv'} for the "
                              f"other form?)")
        name = parts[0]
        if not name:
            raise ConfigError(f"{where}: empty layer name")
        vals = _ints(parts[1:len(want) + 1], want, where)
        if len(parts) == len(want) + 2:
            _check_dense(parts[-1], where)
        if kind == "gemm":
            layers.append(Layer.gemm(name, *vals))
            continue
        h, w, fh, fw, c, n, s = vals
        if fh > h or fw > w:
            raise ConfigError(f"{where}: filter {fh}x{fw} is larger than the IFMAP {h}x{w}")
        if "DP" in name:
            layers.extend(Layer(f"{name}Channel_{i}", h, w, fh, fw, 1, n, s, s)
                          for i in range(c))
        else:
            layers.append(Layer(name, h, w, fh, fw, c, n, s, s))
    if not layers:
        raise ConfigError(f"{path}: no layers (the first line is the header)")
    return layers


def topology_text(layers) -> str:
    """The conv-form topology CSV of ``layers`` (SCALE-Sim reads it with ``-i conv``)."""
    rows = [CONV_HEADER]
    for ly in layers:
        if "," in ly.name or "DP" in ly.name:
            raise ConfigError(f"layer name {ly.name!r}: a SCALE-Sim topology name may not "
                              f"contain ',' or 'DP'")
        if ly.stride_h != ly.stride_w:
            raise ConfigError(f"layer {ly.name}: strides {ly.stride_h}x{ly.stride_w} differ; a "
                              f"SCALE-Sim topology has one stride")
        rows.append(f"{ly.name}, {ly.ifmap_h}, {ly.ifmap_w}, {ly.filt_h}, {ly.filt_w}, "
                    f"{ly.channels}, {ly.filters}, {ly.stride_h},")
    return "\n".join(rows) + "\n"


def write_topology(path, layers) -> None:
    """Write ``layers`` as a conv-form topology CSV (atomically)."""
    from experiments.io import write_text

    write_text(path, topology_text(layers))
