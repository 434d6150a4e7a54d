"""Where pretrained weights live: checkpoints shipped in the repo, or files of installed packages.

Installed weight packages are found with ``importlib.util.find_spec`` and read as files; they are
never imported.
"""

from __future__ import annotations

import glob
import os

import torch

from numeric.errors import DataMissingError

from ._packages import package_dir
from .datasets._missing import HINTS

CHECKPOINT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "checkpoints")


def shipped_path(name: str) -> str:
    return os.path.join(CHECKPOINT_DIR, f"{name}.pt")


def _package_file(dist: str) -> str | None:
    root = package_dir(dist)
    if root is None:
        return None
    files = sorted(glob.glob(os.path.join(root, "**", "*.pth"), recursive=True))
    return files[0] if files else None


def weight_file(entry) -> str | None:
    """Path of the weights for a registry entry, or None when they are not on this machine."""
    if entry.weights is None:
        return None
    if entry.weights == "shipped":
        path = shipped_path(entry.name)
        return path if os.path.isfile(path) else None
    if entry.weights.startswith("package:"):
        return _package_file(entry.weights.split(":", 1)[1])
    raise ValueError(f"bad weights source {entry.weights!r} for {entry.name}")


def available(entry) -> bool:
    return weight_file(entry) is not None


def load_state_dict(entry) -> dict[str, torch.Tensor]:
    path = weight_file(entry)
    if path is not None:
        return torch.load(path, map_location="cpu", weights_only=True)
    if entry.weights is None:
        raise DataMissingError(
            f"no pretrained weights for {entry.name} are shipped or installed (it needs a "
            f"{entry.naming}-named checkpoint on disk); use models.get({entry.name!r}, "
            "pretrained=False) and load a state dict with models.load_external(...)"
        )
    if entry.weights == "shipped":
        raise DataMissingError(
            f"shipped checkpoint {shipped_path(entry.name)} is missing; restore it from the "
            f"repository or train it with `flexiq train {entry.name}`"
        )
    raise DataMissingError(f"weights for {entry.name} are not installed; {HINTS[entry.name]}")
