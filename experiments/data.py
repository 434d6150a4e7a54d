"""Calibration and evaluation data per model, from the registry's data set.

Fashion-MNIST models: calibration on the first images of a seeded shuffle of the train split,
evaluation on the test split (``limit`` keeps its first images). ImageNet models: the photo
pool (models/datasets/photo_list.txt) is split by photo (scene) into a calibration side and an
evaluation side; calibration uses the calibration side's views (crops and mirror images),
view by view; agreement / KL with 8 bits and FP32 use the evaluation side's views, with
each view's photo id for bootstrap intervals; top-1 accuracy uses the 20 labelled ImageNet
photos (which sit on the evaluation side of the pool too). ``synthetic`` data (seeded noise,
random labels) is for tests and cycle studies only; its accuracy means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from quant.errors import ConfigError


@dataclass
class EvalSet:
    name: str
    x: torch.Tensor  # inputs for accuracy and fidelity to 8 bits
    labels: torch.Tensor | None
    pool: torch.Tensor | None = None  # unlabelled inputs for the fidelity metrics
    pool_photo: np.ndarray | None = None  # [len(pool)] photo id of each pool view

    @property
    def fidelity_x(self) -> torch.Tensor:
        """Inputs for agreement/KL against 8 bits and FP32: the pool, else the labelled set."""
        return self.x if self.pool is None else self.pool

    @property
    def fidelity_groups(self) -> np.ndarray:
        """Bootstrap unit of each fidelity row: its photo (pool) or itself."""
        if self.pool is None:
            return np.arange(len(self.x))
        return np.asarray(self.pool_photo)

    @property
    def n_units(self) -> int:
        return len(np.unique(self.fidelity_groups))


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
        from models.datasets.photo_pool import photo_views

        x = photo_views(model_name, "calib", seed=seed).view_major().x[:n]
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
    from models.datasets import imagenet_photos
    from models.datasets.photo_pool import EVAL_VIEWS, photo_views

    x, y = imagenet_photos(model_name)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    pool = photo_views(model_name, "eval", views=EVAL_VIEWS, seed=seed)
    return EvalSet(f"imagenet-photos+pool{pool.n_photos}x{len(pool.x) // pool.n_photos}", x, y,
                   pool=pool.x, pool_photo=pool.photo)


def _kind(model_name: str, data: str) -> str:
    if data == "synthetic":
        return "synthetic"
    if data != "auto":
        raise ConfigError(f"data must be 'auto' or 'synthetic', got {data!r}")
    ds = dataset_of(model_name)
    if ds not in ("fashion-mnist", "imagenet"):
        raise ConfigError(f"model {model_name}: no evaluation data for data set {ds!r}")
    return ds
