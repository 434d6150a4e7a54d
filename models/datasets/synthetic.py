"""Seeded synthetic batches shaped like a model's input -- for unit tests only, never for accuracy."""

from __future__ import annotations

import torch


def synthetic(
    model_name: str | None = None,
    n: int = 8,
    *,
    shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x float32 [n, C, H, W] ~ N(0, 1), labels int64 [n])``, reproducible from ``seed``.

    The shape and class count come from the registry entry ``model_name`` unless given.
    """
    if model_name is not None:
        from ..registry import info

        meta = info(model_name)
        shape = shape or (meta["channels"], meta["input_size"], meta["input_size"])
        num_classes = num_classes or meta["num_classes"]
    if shape is None:
        raise ValueError("synthetic() needs a model name or a shape")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = torch.randint(0, num_classes or 10, (n,), generator=g)
    return x, y
