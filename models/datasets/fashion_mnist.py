"""Fashion-MNIST from its IDX files (Debian package ``dataset-fashion-mnist``), read offline.

Calibration and training use the ``train`` split; only evaluation reads ``test``.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import torch

from ._missing import missing

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
ROOT_ENV = "FLEXIQ_FASHION_MNIST"
MEAN = 0.2860
STD = 0.3530
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(root: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    return None


def _read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte payload
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated IDX file ({arr.size} bytes for shape {shape})")
    return arr.reshape(shape)


@lru_cache(maxsize=4)
def _load_cached(split: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    img_stem, lbl_stem = _FILES[split]
    img_path, lbl_path = _find(root, img_stem), _find(root, lbl_stem)
    if img_path is None or lbl_path is None:
        raise missing("fashion-mnist", f"Fashion-MNIST {split} files not found in {root}")
    images, labels = _read_idx(img_path), _read_idx(lbl_path)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"Fashion-MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion_mnist(split: str = "train", root: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 [N, 28, 28], labels int64-compatible uint8 [N])`` (read-only arrays).

    ``root`` defaults to ``$FLEXIQ_FASHION_MNIST`` or the Debian package directory.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = root or os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    return _load_cached(split, os.path.abspath(root))


def normalize_images(images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] with the recorded mean/std."""
    # the cast copies, so read-only (cached) arrays are fine
    x = torch.from_numpy(np.asarray(images_u8, dtype=np.float32)).div_(255.0)
    return x.sub_(MEAN).div_(STD).unsqueeze(1)


def fashion_mnist_loader(
    split: str,
    batch_size: int = 256,
    *,
    normalize: bool = True,
    limit: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    root: str | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x float32 [B, 1, 28, 28], y int64 [B])`` batches.

    ``limit`` keeps the first ``limit`` images (before any shuffling) so a subset is fixed;
    ``shuffle`` permutes with ``seed``. Without ``normalize`` pixels are in [0, 1].
    """
    images, labels = load_fashion_mnist(split, root)
    n = len(images) if limit is None else min(int(limit), len(images))
    order = np.arange(n)
    if shuffle:
        order = np.random.default_rng(seed).permutation(n)
    for start in range(0, n, batch_size):
        idx = order[start: start + batch_size]
        x = _to_tensor(images[idx], normalize)
        yield x, torch.from_numpy(labels[idx].astype(np.int64))


def _to_tensor(images_u8: np.ndarray, norm: bool) -> torch.Tensor:
    if norm:
        return normalize_images(images_u8)
    return torch.from_numpy(images_u8.astype(np.float32) / 255.0).unsqueeze(1)
