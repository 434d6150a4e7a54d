"""Locate installed data/weight packages without importing them."""

from __future__ import annotations

import importlib.util


def package_dir(dist: str) -> str | None:
    """Directory of the installed top-level package for distribution ``dist`` (or None)."""
    try:
        spec = importlib.util.find_spec(dist.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]
