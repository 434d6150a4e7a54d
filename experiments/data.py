"""Calibration and evaluation data per model, from the registry's data set.

Fashion-MNIST models: calibration on the first images of a seeded shuffle of the train split,
evaluation on the test split (``limit`` keeps its first images). ImageNet models: calibration
on the photo pool (five crops per photo), accuracy on the 20 labelled ImageNet photos, and
agreement with FP32 on the photo pool (centre crops). ``synthetic`` data (seeded noise,
random labels) is for tests and cycle studies only; its accuracy means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quant.errors import ConfigError


@dataclass
class EvalSet:
    name: str
    x: torch.Tensor  # inputs for accuracy and fidelity to 8 bits
    labels: torch.Tensor | None
    pool: torch.Tensor | None = None  # extra unlabelled inputs (FP32 agreement, fidelity)

    @property
    def fidelity_x(self) -> torch.Tensor:
        """Inputs for agreement/KL against 8 bits: the labelled set plus the pool."""
        return self.x if self.pool is None else torch.cat([self.x, self.pool])


def dataset_of(model_name: str) -> str:
    import models

    return models.info(model_name)["dataset"]


def calibration_batches(model_name: str, n: int = 256, *, batch: int = 64, seed: int = 0,
                        data: str = "auto") -> list[torch.Tensor]:
    """Calibration inputs as a list of float NCHW batches."""
    kind = _kind(model_name, data)
    if kind == "synthetic":
        from models.datasets import synthetic

        x, _ = synthetic(model_name, n, seed=1000 + seed)
    elif kind == "fashion-mnist":
        import numpy as np

        from models.datasets import load_fashion_mnist, normalize_images

        images, _ = load_fashion_mnist("train")
        idx = np.random.default_rng(seed).permutation(len(images))[:n]
        x = normalize_images(images[np.sort(idx)])
    else:
        from models.datasets import photo_pool

        x = photo_pool(model_name, crops="five")[:n]
    return [x[i:i + batch] for i in range(0, len(x), batch)]


def evaluation_set(model_name: str, *, limit: int | None = None, data: str = "auto",
                   seed: int = 0) -> EvalSet:
    kind = _kind(model_name, data)
    if kind == "synthetic":
        from models.datasets import synthetic

        x, y = synthetic(model_name, limit or 32, seed=2000 + seed)
        return EvalSet("synthetic", x, y)
    if kind == "fashion-mnist":
        from models.datasets import load_fashion_mnist, normalize_images

        images, labels = load_fashion_mnist("test")
        n = len(images) if limit is None else min(int(limit), len(images))
        return EvalSet("fashion-mnist-test" + (f"[:{n}]" if n < len(images) else ""),
                       normalize_images(images[:n]), torch.as_tensor(labels[:n].astype("int64")))
    from models.datasets import imagenet_photos, photo_pool

    x, y = imagenet_photos(model_name)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return EvalSet("imagenet-photos", x, y, pool=photo_pool(model_name, crops="center"))


def _kind(model_name: str, data: str) -> str:
    if data == "synthetic":
        return "synthetic"
    if data != "auto":
        raise ConfigError(f"data must be 'auto' or 'synthetic', got {data!r}")
    ds = dataset_of(model_name)
    if ds not in ("fashion-mnist", "imagenet"):
        raise ConfigError(f"model {model_name}: no evaluation data for data set {ds!r}")
    return ds
