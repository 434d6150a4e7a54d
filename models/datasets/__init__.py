"""Offline data: Fashion-MNIST, the 20 labelled ImageNet photos, an unlabelled photo pool, and
synthetic batches for unit tests. Missing data raises ``DataMissingError`` with the install command.
"""

from .fashion_mnist import fashion_mnist_loader, load_fashion_mnist, normalize_images
from .imagenet_photos import imagenet_photo_files, imagenet_photos
from .photo_pool import photo_pool, photo_pool_files
from .synthetic import synthetic

__all__ = [
    "fashion_mnist_loader", "imagenet_photo_files", "imagenet_photos", "load_fashion_mnist",
    "normalize_images", "photo_pool", "photo_pool_files", "synthetic",
]
