"""Photo preprocessing for the ImageNet models: resize the shorter side, centre crop, normalize.

Settings come from the registry (``resize``, ``input_size``, ``interpolation``, ``mean``, ``std``).
"""

from __future__ import annotations

import numpy as np
import torch

_FILTERS = {"bilinear": "BILINEAR", "bicubic": "BICUBIC"}


def load_rgb(path: str):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def resize_crop(image, size: int, resize: int, interpolation: str = "bilinear") -> np.ndarray:
    """PIL image -> uint8 [size, size, 3]: shorter side to ``resize``, then the centre crop."""
    from PIL import Image

    w, h = image.size
    scale = resize / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), getattr(Image.Resampling, _FILTERS[interpolation]))
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def to_normalized_tensor(images_u8: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] normalized per channel."""
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def preprocess_files(paths: list[str], model_name: str) -> torch.Tensor:
    """Photos on disk -> the normalized input batch of registry model ``model_name``."""
    from ..registry import info

    meta = info(model_name)
    if meta["channels"] != 3:
        raise ValueError(f"{model_name} takes {meta['channels']}-channel input, not RGB photos")
    size = meta["input_size"]
    resize = meta["resize"] or size
    crops = [resize_crop(load_rgb(p), size, resize, meta["interpolation"]) for p in paths]
    return to_normalized_tensor(np.stack(crops), meta["mean"], meta["std"])
