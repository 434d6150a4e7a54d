"""Accuracy and fidelity metrics on logits (numpy or torch, [N, classes])."""

from __future__ import annotations

import numpy as np


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def top1(logits) -> np.ndarray:
    return _np(logits).argmax(axis=-1)


def accuracy(logits, labels) -> float:
    """Fraction of rows whose arg-max equals the label."""
    p = top1(logits)
    y = _np(labels).astype(np.int64)
    return float((p == y).mean()) if len(y) else float("nan")


def agreement(logits, ref_logits) -> float:
    """Fraction of rows whose arg-max equals the reference's arg-max."""
    a, b = top1(logits), top1(ref_logits)
    return float((a == b).mean()) if len(a) else float("nan")


def log_softmax(logits) -> np.ndarray:
    z = _np(logits)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def mean_kl(logits, ref_logits) -> float:
    """Mean over rows of KL(softmax(ref) || softmax(logits)), in nats."""
    lp, lq = log_softmax(ref_logits), log_softmax(logits)
    if not len(lp):
        return float("nan")
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return float(np.maximum(kl, 0.0).mean())


def per_row_kl(logits, ref_logits) -> np.ndarray:
    """KL(softmax(ref) || softmax(logits)) per row, in nats (clipped at 0)."""
    lp, lq = log_softmax(ref_logits), log_softmax(logits)
    return np.maximum((np.exp(lp) * (lp - lq)).sum(axis=-1), 0.0)


def bootstrap_ci(values, groups=None, *, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` [N], resampling whole groups.

    ``groups`` [N] gives each row's unit (a photo: all its crops are drawn together); None
    makes every row its own unit. A resample draws as many units as there are, with
    replacement, and takes the mean over all rows of the drawn units. Seeded: the same
    inputs and seed give the same interval.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(v):
        return float("nan"), float("nan")
    g = np.arange(len(v)) if groups is None else np.asarray(groups).reshape(-1)
    if len(g) != len(v):
        raise ValueError(f"bootstrap_ci: {len(v)} values but {len(g)} group ids")
    _, inv = np.unique(g, return_inverse=True)
    n_units = int(inv.max()) + 1
    sums = np.bincount(inv, weights=v, minlength=n_units)
    sizes = np.bincount(inv, minlength=n_units).astype(np.float64)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b0 in range(0, n_boot, 100):  # draws in chunks: bounded memory for 10k units
        nb = min(100, n_boot - b0)
        draw = rng.integers(0, n_units, size=(nb, n_units))
        counts = np.stack([np.bincount(d, minlength=n_units) for d in draw]).astype(np.float64)
        stats[b0:b0 + nb] = (counts @ sums) / (counts @ sizes)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return float(lo), float(hi)
