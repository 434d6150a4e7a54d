from __future__ import annotations

import importlib

import pytest
import torch

import models
from models.datasets import imagenet_photo_files, imagenet_photos, photo_pool, synthetic
from quant.errors import DataMissingError


def test_imagenet_photos_shapes_and_labels():
    x, y = imagenet_photos("efficientnet_lite1")
    assert x.shape == (20, 3, 240, 240) and x.dtype == torch.float32
    assert y.tolist() == [lbl for _, lbl in imagenet_photo_files()]
    assert y.tolist()[:4] == [243, 559, 438, 990]
    # Lite normalization maps 0..255 to about [-1, 1]
    assert -1.0 <= float(x.min()) < -0.9 and 0.9 < float(x.max()) <= 1.0


def test_missing_foolbox_says_how_to_install(monkeypatch):
    mod = importlib.import_module("models.datasets.imagenet_photos")

    monkeypatch.setattr(mod, "package_dir", lambda dist: None)
    with pytest.raises(DataMissingError, match="pip install --no-deps foolbox==3.3.4"):
        mod.imagenet_photos("efficientnet_lite0")


def test_photo_pool():
    try:
        x = photo_pool("resnet18")
    except DataMissingError as e:
        pytest.skip(f"photo pool not installed: {e}")
    assert x.ndim == 4 and x.shape[1:] == (3, 224, 224) and len(x) >= 2
    x5 = photo_pool("resnet18", crops="five")
    assert len(x5) == 5 * len(x)
    # the first of the five crops is the eval centre crop, up to resampling (crop-then-resize):
    # of the five, it is the one nearest the centre crop
    d = (x5.reshape(len(x), 5, -1) - x.reshape(len(x), 1, -1)).abs().mean(-1)
    assert float((d.argmin(1) == 0).float().mean()) > 0.9


def test_photo_pool_missing(monkeypatch):
    mod = importlib.import_module("models.datasets.photo_pool")

    monkeypatch.setattr(mod, "source_root", lambda source: None)
    with pytest.raises(DataMissingError, match="apt-get install opencv-doc"):
        mod.photo_pool("resnet18")


def test_photos_need_an_rgb_model():
    with pytest.raises(ValueError, match="1-channel"):
        imagenet_photos("resnet20_fmnist")


def test_synthetic_is_seeded_and_shaped():
    x, y = synthetic("vit_tiny_fmnist", 4, seed=1)
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,) and int(y.max()) < 10
    x2, y2 = synthetic("vit_tiny_fmnist", 4, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, synthetic("vit_tiny_fmnist", 4, seed=2)[0])
    assert synthetic(shape=(3, 8, 8), n=2)[0].shape == (2, 3, 8, 8)
    assert models.info("resnet18")["input_size"] == synthetic("resnet18", 1)[0].shape[-1]
