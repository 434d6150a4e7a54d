"""Vision Transformer with torchvision state-dict naming (ViT-S/16 and ViT-B/16).

torchvision keeps the fused q/k/v projection of ``nn.MultiheadAttention`` as the raw parameters
``self_attention.in_proj_weight`` / ``in_proj_bias``. Here that projection is a real
``nn.Linear`` (``self_attention.in_proj``) so quantizers and compilers see a Linear layer; every
other key is torchvision's. ``from_torchvision_state_dict`` / ``to_torchvision_state_dict``
convert between the two (only those two keys per layer are renamed).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .attention import attend
from .vit_timm import _init_transformer


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(attend(self.in_proj(x), self.num_heads, self.scale))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = SelfAttention(dim, num_heads)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(  # torchvision MLPBlock: keys mlp.0 and mlp.3
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.self_attention(self.ln_1(x)))
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, seq_len: int, depth: int, dim: int, num_heads: int, mlp_dim: int,
                 dropout: float = 0.0):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_len, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(dim, num_heads, mlp_dim, dropout)) for i in range(depth)
        ))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 16,
        num_layers: int = 12,
        num_heads: int = 12,
        hidden_dim: int = 768,
        mlp_dim: int = 3072,
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.0,
    ):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
        self.conv_proj = nn.Conv2d(in_chans, hidden_dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_len = (image_size // patch_size) ** 2 + 1
        self.encoder = Encoder(seq_len, num_layers, hidden_dim, num_heads, mlp_dim, dropout)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(hidden_dim, num_classes)))
        _init_transformer(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # [B, N, C]
        cls = self.class_token.expand(x.shape[0], -1, -1)
        x = self.encoder(torch.cat([cls, x], dim=1))
        return self.heads(x[:, 0])


_TV_SUFFIX = {"self_attention.in_proj_weight": "self_attention.in_proj.weight",
              "self_attention.in_proj_bias": "self_attention.in_proj.bias"}


def from_torchvision_state_dict(state: dict) -> dict:
    """Rename a torchvision ViT state dict to this module's keys (values are not copied)."""
    out = OrderedDict()
    for k, v in state.items():
        for tv, ours in _TV_SUFFIX.items():
            if k.endswith(tv):
                k = k[: -len(tv)] + ours
                break
        out[k] = v
    return out


def to_torchvision_state_dict(state: dict) -> dict:
    """Inverse of ``from_torchvision_state_dict``."""
    out = OrderedDict()
    for k, v in state.items():
        for tv, ours in _TV_SUFFIX.items():
            if k.endswith(ours):
                k = k[: -len(ours)] + tv
                break
        out[k] = v
    return out


def vit_s_16(**kw) -> VisionTransformer:
    """ViT-S/16 (384 wide, 6 heads, 12 layers) in torchvision's layout."""
    return VisionTransformer(num_layers=12, num_heads=6, hidden_dim=384, mlp_dim=1536, **kw)


def vit_b_16(**kw) -> VisionTransformer:
    """torchvision ``vit_b_16``."""
    return VisionTransformer(num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072, **kw)
