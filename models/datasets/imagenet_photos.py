"""The 20 labelled ImageNet photos shipped in the foolbox 3.3.4 wheel (read as files; foolbox is
never imported). File names are ``imagenet_{i:02d}_{label}.jpg`` with ``label`` the class index.
"""

from __future__ import annotations

import glob
import os
import re

import torch

from .._packages import package_dir
from ._missing import missing
from .preprocess import preprocess_files

_NAME = re.compile(r"imagenet_(\d+)_(\d+)\.jpg$")


def imagenet_photo_files() -> list[tuple[str, int]]:
    """``[(path, label), ...]`` in file order; raises DataMissingError without foolbox's data."""
    root = package_dir("foolbox")
    files = sorted(glob.glob(os.path.join(root, "data", "imagenet_*.jpg"))) if root else []
    if not files:
        raise missing("foolbox", "the labelled ImageNet photos (foolbox/data/imagenet_*.jpg) were not found")
    out = []
    for path in files:
        m = _NAME.search(os.path.basename(path))
        if m:
            out.append((path, int(m.group(2))))
    out.sort(key=lambda pl: int(_NAME.search(os.path.basename(pl[0])).group(1)))
    return out


def imagenet_photos(model_name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x float32 [20, 3, H, W] preprocessed for model_name, labels int64 [20])``."""
    files = imagenet_photo_files()
    x = preprocess_files([p for p, _ in files], model_name)
    return x, torch.tensor([lbl for _, lbl in files], dtype=torch.int64)
