"""An unlabelled pool of real photos for calibration and FP32-agreement metrics on ImageNet models:
the sample photos that ship inside scikit-image (``skimage/data``) and scikit-learn
(``sklearn/datasets/images``), read as files (neither package is imported).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .._packages import package_dir
from ._missing import missing
from .preprocess import load_rgb, resize_crop, to_normalized_tensor

# natural photographs only (no synthetic test patterns, logos or text); grey ones become RGB
POOL = {
    "skimage": ("data", ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
                         "motorcycle_right.png", "rocket.jpg", "hubble_deep_field.jpg",
                         "camera.png", "coins.png", "moon.png", "brick.png", "grass.png",
                         "gravel.png"]),
    "sklearn": (os.path.join("datasets", "images"), ["china.jpg", "flower.jpg"]),
}


def photo_pool_files() -> list[str]:
    """Paths of the pool photos that are installed; DataMissingError when there are none."""
    found = []
    for package, (sub, names) in POOL.items():
        root = package_dir(package)
        if root is None:
            continue
        found += [p for p in (os.path.join(root, sub, n) for n in names) if os.path.isfile(p)]
    if not found:
        raise missing("photos", "no sample photos from scikit-image / scikit-learn are installed")
    return found


def _five_crop_boxes(w: int, h: int, side: int) -> list[tuple[int, int, int, int]]:
    cx, cy = (w - side) // 2, (h - side) // 2
    corners = [(0, 0), (w - side, 0), (0, h - side), (w - side, h - side)]
    return [(x, y, x + side, y + side) for x, y in [(cx, cy), *corners]]


def photo_pool(model_name: str, crops: str = "center") -> torch.Tensor:
    """Preprocessed pool photos for ``model_name``: float32 [N, 3, H, W], no labels.

    ``crops="center"`` gives one image per photo (the model's eval crop); ``crops="five"`` adds
    the four corner crops of the same scale (5 per photo), for more calibration images.
    """
    from ..registry import info

    if crops not in ("center", "five"):
        raise ValueError(f"crops must be 'center' or 'five', got {crops!r}")
    meta = info(model_name)
    size, resize = meta["input_size"], meta["resize"] or meta["input_size"]
    out = []
    for path in photo_pool_files():
        image = load_rgb(path)
        if crops == "center":
            out.append(resize_crop(image, size, resize, meta["interpolation"]))
            continue
        w, h = image.size
        side = round(min(w, h) * size / resize)
        for box in _five_crop_boxes(w, h, side):
            out.append(resize_crop(image.crop(box), size, size, meta["interpolation"]))
    return to_normalized_tensor(np.stack(out), meta["mean"], meta["std"])
