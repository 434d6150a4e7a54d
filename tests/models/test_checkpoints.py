"""Each shipped Fashion-MNIST checkpoint still scores what its model card says (on test[:2000])."""

from __future__ import annotations

import os

import pytest  # noqa: F401
import torch

import models
from experiments.train import evaluate
from models.cards import load_cards
from models.weights import shipped_path

FMNIST = ["resnet20_fmnist", "mobilenet_v2_fmnist", "vit_tiny_fmnist"]
TOLERANCE = 0.003  # 6 of 2000 images: thread count / CPU rounding may flip a borderline one
CARDS = load_cards()


@pytest.mark.parametrize("name", FMNIST)
def test_checkpoint_matches_its_card(name):
    assert name in CARDS, f"{name} has no model card (train it: flexiq train {name} --ship)"
    card = CARDS[name]
    assert os.path.isfile(shipped_path(name)), f"card for {name} but no {shipped_path(name)}"
    assert os.path.getsize(shipped_path(name)) < 8 * 2**20
    state = torch.load(shipped_path(name), map_location="cpu", weights_only=True)
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
    model = models.get(name)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == card["params"]
    assert card["subset"] == "test[:2000]"
    acc = evaluate(model, "test", limit=2000)
    assert abs(acc - card["subset_acc"]) <= TOLERANCE, (acc, card["subset_acc"])
    assert 0.0 < card["test_acc"] <= 1.0 and card["epochs"] >= 1
