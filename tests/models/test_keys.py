"""State-dict keys and shapes match the published torchvision / timm / Lite-package layouts."""

from __future__ import annotations

import json
import os

import pytest
import torch

import models

from .conftest import built

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "reference_keys.json")
with open(FIXTURE) as f:
    REF = json.load(f)


def _published(name: str) -> dict:
    return models.to_published_keys(name, built(name).state_dict())


def test_fixture_adds_up_to_published_param_counts():
    buffers = tuple(REF["buffer_suffixes"])
    for name, keys in REF["keys"].items():
        n = sum(int(torch.Size(s).numel()) for k, s in keys.items() if not k.endswith(buffers))
        assert n == REF["published_params"][name], name


@pytest.mark.parametrize("name", sorted(REF["keys"]))
def test_keys_and_shapes_match_published(name):
    ours = {k: list(v.shape) for k, v in _published(name).items()}
    ref = REF["keys"][name]
    assert sorted(set(ref) - set(ours)) == [], "missing keys"
    assert sorted(set(ours) - set(ref)) == [], "unexpected keys"
    assert {k: s for k, s in ours.items() if ref[k] != s} == {}, "shape mismatch"
    params = sum(p.numel() for p in built(name).parameters())
    assert params == REF["published_params"][name]


@pytest.mark.parametrize("name", ["resnet18", "vit_b_16", "deit_s", "swin_t"])
def test_load_external_accepts_a_published_state_dict(name):
    g = torch.Generator().manual_seed(1)
    state = {}
    for k, shape in REF["keys"][name].items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7)
        elif k.endswith("relative_position_index"):
            state[k] = _published(name)[k].clone()
        else:
            state[k] = torch.randn(shape, generator=g)
    model = models.load_external(name, {"model": state})
    mine = models.to_published_keys(name, model.state_dict())
    for k, v in state.items():
        torch.testing.assert_close(mine[k], v, rtol=0, atol=0)


def test_load_external_rejects_a_mismatched_checkpoint():
    from quant.errors import FlexiQError

    state = dict(built("resnet18").state_dict())
    state.pop("fc.bias")
    with pytest.raises(FlexiQError, match="missing.*fc.bias"):
        models.load_external("resnet18", state)


def test_torchvision_vit_attention_equals_multihead_attention():
    """Our in_proj Linear + explicit attention computes what torchvision's nn.MultiheadAttention does."""
    from models.vit_torchvision import SelfAttention

    torch.manual_seed(0)
    ours = SelfAttention(64, 4).eval()
    mha = torch.nn.MultiheadAttention(64, 4, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(ours.in_proj.weight)
        mha.in_proj_bias.copy_(ours.in_proj.bias)
        mha.out_proj.weight.copy_(ours.out_proj.weight)
        mha.out_proj.bias.copy_(ours.out_proj.bias)
        x = torch.randn(3, 17, 64)
        ref, _ = mha(x, x, x, need_weights=False)
        torch.testing.assert_close(ours(x), ref, rtol=1e-5, atol=1e-5)


def test_timm_vit_checkpoint_loads_into_torchvision_style_vit():
    """timm's vit_base_patch16_224 has deit_b's layout; it must load into vit_b_16."""
    torch.manual_seed(2)
    timm_state = built("deit_b").state_dict()
    model = models.load_external("vit_b_16", timm_state)
    x = models.example_input("vit_b_16")
    with torch.no_grad():
        torch.testing.assert_close(model(x), built("deit_b")(x), rtol=1e-5, atol=1e-5)
