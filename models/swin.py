"""Swin Transformer (v1) with torchvision state-dict naming: Swin-T/S/B at 224x224.

The feature-map size of every stage is fixed when the model is built (``image_size``), so the
window partition uses constant shapes and the shifted-window attention masks are precomputed
non-persistent buffers; the traced graph has only reshapes, ``torch.roll``, Linear, matmul and
softmax. torchvision's behaviour is kept: a stage whose (padded) size is not larger than the
window does not shift, and sizes that are not window multiples are zero-padded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attend


class Permute(nn.Module):
    def __init__(self, dims: list[int]):
        super().__init__()
        self.dims = list(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


def _relative_position_index(ws: int) -> torch.Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return (rel[:, :, 0] * (2 * ws - 1) + rel[:, :, 1]).flatten()  # [ws^4]


def _shift_mask(pad_h: int, pad_w: int, ws: int, shift: tuple[int, int]) -> torch.Tensor:
    """Additive mask [nW, 1, ws*ws, ws*ws]: -100 between tokens from different shifted regions."""
    region = torch.zeros(pad_h, pad_w)
    count = 0
    for hs in ((0, -ws), (-ws, -shift[0]), (-shift[0], None)):
        for wsl in ((0, -ws), (-ws, -shift[1]), (-shift[1], None)):
            region[hs[0]: hs[1], wsl[0]: wsl[1]] = count
            count += 1
    windows = region.view(pad_h // ws, ws, pad_w // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return torch.where(diff != 0, -100.0, 0.0).unsqueeze(1)


class ShiftedWindowAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int,
                 resolution: tuple[int, int]):
        super().__init__()
        self.num_heads, self.ws = num_heads, window_size
        self.scale = (dim // num_heads) ** -0.5
        h, w = resolution
        self.h, self.w = h, w
        self.pad_h, self.pad_w = -(-h // window_size) * window_size, -(-w // window_size) * window_size
        # as torchvision: no shift along an axis the window already covers
        self.shift = (0 if window_size >= self.pad_h else shift_size,
                      0 if window_size >= self.pad_w else shift_size)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads).normal_(std=0.02))
        self.register_buffer("relative_position_index", _relative_position_index(window_size))
        mask = _shift_mask(self.pad_h, self.pad_w, window_size, self.shift) if any(self.shift) else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        n = self.ws * self.ws
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)  # [1, heads, N, N]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, H, W, C]
        ws, c = self.ws, x.shape[-1]
        if (self.pad_h, self.pad_w) != (self.h, self.w):
            x = F.pad(x, (0, 0, 0, self.pad_w - self.w, 0, self.pad_h - self.h))
        if any(self.shift):
            x = torch.roll(x, shifts=(-self.shift[0], -self.shift[1]), dims=(1, 2))
        nh, nw = self.pad_h // ws, self.pad_w // ws
        x = x.reshape(-1, nh, ws, nw, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        x = attend(self.qkv(x), self.num_heads, self.scale, self.relative_position_bias(),
                   self.attn_mask)
        x = self.proj(x)
        x = x.reshape(-1, nh, nw, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, self.pad_h, self.pad_w, c)
        if any(self.shift):
            x = torch.roll(x, shifts=self.shift, dims=(1, 2))
        if (self.pad_h, self.pad_w) != (self.h, self.w):
            x = x[:, : self.h, : self.w, :]
        return x


class SwinBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int,
                 resolution: tuple[int, int], mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ShiftedWindowAttention(dim, num_heads, window_size, shift_size, resolution)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(  # torchvision MLP: keys mlp.0 and mlp.3
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> channels (order x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2])."""

    def __init__(self, dim: int, resolution: tuple[int, int]):
        super().__init__()
        self.pad = (resolution[0] % 2, resolution[1] % 2)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, (0, 0, 0, self.pad[1], 0, self.pad[0]))
        x = torch.cat([x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :],
                       x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]], dim=-1)
        return self.reduction(self.norm(x))


class SwinTransformer(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        depths: list[int],
        num_heads: list[int],
        window_size: int = 7,
        patch_size: int = 4,
        image_size: int = 224,
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        res = (-(-image_size // patch_size), -(-image_size // patch_size))
        layers: list[nn.Module] = [nn.Sequential(
            nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(embed_dim),
        )]
        dim = embed_dim
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            layers.append(nn.Sequential(*(
                SwinBlock(dim, heads, window_size, 0 if j % 2 == 0 else window_size // 2, res)
                for j in range(depth))))
            if i < len(depths) - 1:
                layers.append(PatchMerging(dim, res))
                res, dim = (-(-res[0] // 2), -(-res[1] // 2)), dim * 2
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dim)
        self.permute = Permute([0, 3, 1, 2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.permute(self.norm(self.features(x)))
        return self.head(torch.flatten(self.avgpool(x), 1))


def swin_t(**kw) -> SwinTransformer:
    return SwinTransformer(96, [2, 2, 6, 2], [3, 6, 12, 24], **kw)


def swin_s(**kw) -> SwinTransformer:
    return SwinTransformer(96, [2, 2, 18, 2], [3, 6, 12, 24], **kw)


def swin_b(**kw) -> SwinTransformer:
    return SwinTransformer(128, [2, 2, 18, 2], [4, 8, 16, 32], **kw)
