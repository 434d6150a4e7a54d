"""The packaged ImageNet weights load strictly and reproduce the published model on real photos."""

from __future__ import annotations

import functools

import pytest
import torch

import models
from models.datasets import imagenet_photos

# top-1 on the 20 labelled foolbox photos with the recorded preprocessing (measured: 18, 18, 18)
MIN_CORRECT = {"efficientnet_lite0": 17, "efficientnet_lite1": 17, "efficientnet_lite2": 17}


@functools.cache
def _logits(name):
    x, y = imagenet_photos(name)
    with torch.no_grad():
        return models.get(name)(x), y


@pytest.mark.parametrize("name", sorted(MIN_CORRECT))
def test_top1_on_the_20_photos(name):
    logits, y = _logits(name)
    correct = int((logits.argmax(1) == y).sum())
    assert correct >= MIN_CORRECT[name], f"{name}: {correct}/20"


def test_tf_same_padding_matters():
    """Symmetric padding instead of TF 'SAME' changes Lite0's predictions (guards the pad modules)."""
    model = models.get("efficientnet_lite0")
    pads = [n for n, m in model.named_modules() if isinstance(m, torch.nn.ZeroPad2d)]
    assert pads == ["_stem_pad", "_blocks.1._pad", "_blocks.3._pad", "_blocks.5._pad", "_blocks.11._pad"]
    assert model._conv_stem.padding == (0, 0) and model._stem_pad.padding == (0, 1, 0, 1)
