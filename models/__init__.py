"""Model zoo: plain-torch architectures with torchvision/timm key naming, a registry, and data.

    import models
    models.names()                      # registry names
    models.info("efficientnet_lite0")   # input size, channels, classes, mean/std, weights
    m = models.get("resnet20_fmnist")   # eval-mode module with its shipped weights
    m = models.load_external("vit_b_16", "vit_b_16-c867db91.pth")  # a torchvision checkpoint

Data lives in ``models.datasets`` (Fashion-MNIST, ImageNet photos, photo pool, synthetic).
"""

from .convert import load_external, to_model_keys, to_published_keys
from .registry import REGISTRY, build, example_input, get, info, names

__all__ = [
    "REGISTRY", "build", "example_input", "get", "info", "load_external", "names",
    "to_model_keys", "to_published_keys",
]
