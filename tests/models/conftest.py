from __future__ import annotations

import functools

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """CI runs two workers on two cores: keep each to one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def built(name: str) -> torch.nn.Module:
    """One randomly initialised (seeded) eval-mode instance per architecture, shared by tests."""
    import models

    torch.manual_seed(0)
    return models.get(name, pretrained=False)
