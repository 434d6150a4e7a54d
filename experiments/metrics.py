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
