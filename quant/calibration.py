"""Calibration: run the float graph on data and record the ranges each quantizer needs.

For every tensor-valued node: its min and max (min/max observer) or the mean over
batches of its low/high percentiles (percentile observer). For every GEMM input
additionally, per feature channel: min, max and mean square (the channel priority uses
them). Feature channels are dim 1 for conv inputs (NCHW) and the last dim for Linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from tqdm.auto import tqdm

from .capture import GEMM_KINDS
from .errors import CalibrationError


@dataclass
class TensorStats:
    lo: float = np.inf
    hi: float = -np.inf
    n_batches: int = 0
    p_lo: list = field(default_factory=list)
    p_hi: list = field(default_factory=list)

    def update(self, t: torch.Tensor, percentile: float | None):
        v = t.detach().float()
        self.lo = min(self.lo, float(v.min()))
        self.hi = max(self.hi, float(v.max()))
        if percentile is not None and percentile < 100:
            flat = v.flatten()
            if flat.numel() > 1_000_000:
                flat = flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]]
            q = torch.quantile(flat, torch.tensor([1 - percentile / 100, percentile / 100]))
            self.p_lo.append(float(q[0]))
            self.p_hi.append(float(q[1]))
        self.n_batches += 1

    def range(self, observer: str) -> tuple[float, float]:
        if observer == "percentile" and self.p_lo:
            lo = self.lo if self.lo >= 0 else float(np.mean(self.p_lo))
            return lo, float(np.mean(self.p_hi))
        return self.lo, self.hi


@dataclass
class ChannelStats:
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    sq_sum: np.ndarray | None = None
    count: int = 0

    def update(self, t: torch.Tensor, channel_dim: int):
        v = t.detach().double().movedim(channel_dim, -1)
        v = v.reshape(-1, v.shape[-1])
        lo, hi = v.min(0).values.numpy(), v.max(0).values.numpy()
        sq = (v * v).sum(0).numpy()
        if self.lo is None:
            self.lo, self.hi, self.sq_sum = lo, hi, sq
        else:
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)
            self.sq_sum = self.sq_sum + sq
        self.count += v.shape[0]

    @property
    def mean_sq(self) -> np.ndarray:
        return self.sq_sum / max(self.count, 1)


class _Recorder(fx.Interpreter):
    def __init__(self, gm, stats, chan, percentile):
        super().__init__(gm)
        self.stats, self.chan, self.percentile = stats, chan, percentile
        self.shapes: dict = {}

    def run_node(self, n):
        out = super().run_node(n)
        kind = n.meta.get("kind")
        if kind in GEMM_KINDS:
            x = self.env[n.args[0]]
            cdim = 1 if kind == "conv" else x.dim() - 1
            self.chan.setdefault(n.name, ChannelStats()).update(x, cdim)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            self.shapes[n.name] = tuple(out.shape)
        elif isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
            self.shapes[n.name] = tuple(tuple(o.shape) for o in out)
        if isinstance(out, torch.Tensor) and out.is_floating_point() and kind not in ("const", "shape", "output"):
            if not torch.isfinite(out).all():
                raise CalibrationError(f"non-finite values at node '{n.name}' during calibration")
            self.stats.setdefault(n.name, TensorStats()).update(out, self.percentile)
        return out


def iter_batches(calib_data):
    """Accept a tensor, an iterable of tensors, or an iterable of (x, y) tuples."""
    if isinstance(calib_data, torch.Tensor):
        yield calib_data
        return
    if isinstance(calib_data, np.ndarray):
        yield torch.from_numpy(calib_data).float()
        return
    for item in calib_data:
        x = item[0] if isinstance(item, (tuple, list)) else item
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        yield x.float()


def calibrate(gm: fx.GraphModule, calib_data, observer="minmax", percentile=99.99,
              max_batches=None, progress=True):
    """Returns (tensor stats per node, channel stats per GEMM node, output shapes of the
    last batch per node, batches seen)."""
    stats: dict = {}
    chan: dict = {}
    rec = _Recorder(gm, stats, chan, percentile if observer == "percentile" else None)
    n = 0
    with torch.no_grad():
        for x in tqdm(iter_batches(calib_data), desc="calibrate", disable=not progress,
                      leave=False):
            if x.numel() == 0:
                continue
            if not torch.isfinite(x).all():
                raise CalibrationError(f"calibration batch {n} holds non-finite inputs")
            rec.run(x)
            n += 1
            if max_batches is not None and n >= max_batches:
                break
    if n == 0:
        raise CalibrationError("calibration data is empty: give at least one non-empty batch")
    return stats, chan, rec.shapes, n
