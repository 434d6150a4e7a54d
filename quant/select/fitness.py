"""Fitness of a selection: how far the mixed model's soft labels move from the 8-bit model's.

``metric="kl"``: ``fitness = mean over the batch of KL(softmax(8-bit) || softmax(mixed))``;
``metric="l2"``: ``mean || softmax(mixed logits) - softmax(8-bit logits) ||_2``; lower is
better, 0 for the 8-bit model itself. It is evaluated with the fast fake-quant path
(quant/fake_quant.py, approximate: float32 accumulation) on a fixed calibration batch; results
are cached per flag vector, so elites and repeated children cost nothing, and the values at
the graph's cut points are cached per upstream plan (``PrefixCache``), so a selection that
shares its first layers with one seen before only recomputes the rest of the network.
By default the requantization products are float32 (``precise=False``): faster, and within
a code of the exact runtime except at rare rounding boundaries.
"""

from __future__ import annotations

import numpy as np
import torch

from ..calibration import iter_batches
from ..errors import CalibrationError, ConfigError
from ..fake_quant import FakeQuantModel
from .prefix_cache import PrefixCache
from .space import SearchSpace, encode


def take_batch(calib_data, n: int) -> torch.Tensor:
    """The first ``n`` samples of ``calib_data`` (tensor, array or iterable of batches)."""
    parts, have = [], 0
    for x in iter_batches(calib_data):
        parts.append(x)
        have += x.shape[0]
        if have >= n:
            break
    if not parts:
        raise CalibrationError("selection needs calibration data: got an empty set")
    return torch.cat(parts)[:n]


def _flat(logits) -> torch.Tensor:
    """The first output (of a tuple), float32, one row per sample."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    return logits.float().reshape(logits.shape[0], -1)


def soft_labels(logits) -> torch.Tensor:
    return torch.softmax(_flat(logits), dim=-1)


METRICS = ("l2", "kl")


def log_soft_labels(logits) -> torch.Tensor:
    return torch.log_softmax(_flat(logits), dim=-1)


def distance(logits, ref_p, ref_logp, metric: str) -> float:
    """Mean over the batch of the distance from the reference (its softmax ``ref_p`` and
    log-softmax ``ref_logp``): ``l2`` between softmaxes, or ``kl``, KL(reference || mixed)."""
    if metric == "kl":
        return float((ref_p * (ref_logp - log_soft_labels(logits))).sum(dim=1).mean())
    return float((soft_labels(logits) - ref_p).norm(dim=1).mean())


class SoftLabelFitness:
    """Scores flag vectors of a ``SearchSpace`` on one calibration batch.

    ``metric``: "l2" (mean L2 distance of the softmaxes) or "kl" (mean KL divergence from the
    8-bit model's softmax). KL adds up over independent error sources the way the linear
    surrogate assumes; an L2 distance grows like the square root of such a sum."""

    def __init__(self, qmodel, space: SearchSpace, calib_data, *, batch: int = 64,
                 precise: bool = False, cache_bytes: int = 512 * 2**20, metric: str = "l2"):
        if metric not in METRICS:
            raise ConfigError(f"fitness metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.qm = qmodel
        self.space = space
        self.x = take_batch(calib_data, batch)
        self.fq = FakeQuantModel(qmodel, precise=precise)
        self._base = {name: (np.asarray(L.order), 0) for name, L in qmodel.layers.items()}
        with torch.no_grad():
            out = self.fq(self.x, plan=self._base)
            self.teacher = soft_labels(out)
            self.teacher_logp = log_soft_labels(out)
        self.cache: dict = {}
        self.prefix = PrefixCache(cache_bytes) if cache_bytes else None
        self.evaluations = 0

    def plan(self, flags) -> dict:
        plan = dict(self._base)
        plan.update(self.space.layer_plan(flags))
        return plan

    def logits(self, flags):
        """The mixed model's outputs on the fitness batch (prefix-cached, no gradient)."""
        with torch.no_grad():
            return self.fq(self.x, plan=self.plan(flags), prefix_cache=self.prefix)

    def soft(self, flags) -> torch.Tensor:
        return soft_labels(self.logits(flags))

    def __call__(self, flags) -> float:
        key = encode(flags)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        value = distance(self.logits(flags), self.teacher, self.teacher_logp, self.metric)
        self.cache[key] = value
        self.evaluations += 1
        return value
