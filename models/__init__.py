"""Model zoo: plain-torch architectures with torchvision/timm key naming, a registry, and data.

    import models
    models.names()                      # registry names
    models.info("efficientnet_lite0")   # input size, channels, classes, mean/std, weights
    m = models.get("resnet20_fmnist")   # eval-mode module with its shipped weights
"""

from .registry import REGISTRY, build, example_input, get, info, names

__all__ = ["REGISTRY", "build", "example_input", "get", "info", "names"]
