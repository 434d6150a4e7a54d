"""The trainer is seeded and resumable: an interrupted run ends bit-identical to a straight one."""

from __future__ import annotations

import os

import pytest
import torch

from experiments.train import train

SMALL = dict(limit=64, eval_limit=100, batch_size=32, progress=False, threads=1)


def test_resume_equals_uninterrupted_run(tmp_path):
    straight = train("mobilenet_v2_fmnist", 2, seed=3, out=str(tmp_path / "a"), **SMALL)
    part = train("mobilenet_v2_fmnist", 2, seed=3, out=str(tmp_path / "b"), stop_after=1, **SMALL)
    assert part["finished"] is False and part["epochs_done"] == 1
    assert os.path.isfile(tmp_path / "b" / "state.pt")
    resumed = train("mobilenet_v2_fmnist", 2, seed=3, out=str(tmp_path / "b"), **SMALL)
    assert resumed["finished"] and [h["epoch"] for h in resumed["history"]] == [1, 2]
    a = torch.load(straight["weights"], weights_only=True)
    b = torch.load(resumed["weights"], weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
        assert a[k].dtype != torch.float64
    assert straight["history"][-1]["train_loss"] == resumed["history"][-1]["train_loss"]
    # a different seed gives different weights
    other = train("vit_tiny_fmnist", 1, seed=4, out=str(tmp_path / "c"), **SMALL)
    again = train("vit_tiny_fmnist", 1, seed=5, out=str(tmp_path / "d"), **SMALL)
    wa = torch.load(other["weights"], weights_only=True)
    wb = torch.load(again["weights"], weights_only=True)
    assert not torch.equal(wa["head.weight"], wb["head.weight"])


def test_resume_refuses_a_different_run(tmp_path):
    from quant.errors import FlexiQError

    train("resnet20_fmnist", 1, seed=0, out=str(tmp_path), **SMALL)
    with pytest.raises(FlexiQError, match="different run"):
        train("resnet20_fmnist", 1, seed=1, out=str(tmp_path), **SMALL)


def test_unknown_model_has_no_recipe():
    from quant.errors import FlexiQError

    with pytest.raises(FlexiQError, match="no training recipe"):
        train("resnet50", 1)


def test_cli_parses_train():
    from experiments.cli import build_parser

    args = build_parser().parse_args(["train", "vit_tiny_fmnist", "--epochs", "3", "--seed", "2"])
    assert (args.command, args.name, args.epochs, args.seed, args.resume) == ("train", "vit_tiny_fmnist", 3, 2, True)


def test_ship_writes_weights_card_and_markdown(tmp_path, monkeypatch):
    import json

    from models import cards

    monkeypatch.setattr(cards, "CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setattr(cards, "CARDS_JSON", str(tmp_path / "cards.json"))
    monkeypatch.setattr(cards, "CARD_MD", str(tmp_path / "MODEL_CARD.md"))
    result = train("resnet20_fmnist", 1, seed=0, out=str(tmp_path / "run"), **SMALL)
    dest = cards.ship(result, command="flexiq train resnet20_fmnist --seed 0 --ship")
    assert os.path.isfile(dest) and dest.startswith(str(tmp_path))
    card = json.loads((tmp_path / "cards.json").read_text())["resnet20_fmnist"]
    assert card["params"] == 272186 and card["subset"] == "test[:100]" and card["epochs"] == 1
    md = (tmp_path / "MODEL_CARD.md").read_text()
    assert "`resnet20_fmnist`" in md and "flexiq train resnet20_fmnist --seed 0 --ship" in md
    assert "`vit_tiny_fmnist`" in md and "not shipped yet" in md
