"""Explicit multi-head self-attention math shared by the ViT, DeiT and Swin models.

Written with plain tensor ops (matmul, softmax) so torch.fx records every step; the
projections around it are real ``nn.Linear`` modules owned by the calling model.
"""

from __future__ import annotations

import torch


def attend(
    qkv: torch.Tensor,
    num_heads: int,
    scale: float,
    bias: torch.Tensor | None = None,
    window_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``qkv`` [B, N, 3*C] (q, k, v concatenated, heads contiguous) -> [B, N, C].

    ``bias`` (broadcastable to [B, heads, N, N]) is added to the scaled scores before softmax.
    ``window_mask`` [nW, 1, N, N] is added per window when the batch axis holds
    ``images * nW`` windows, image-major (Swin's shifted windows).
    """
    qkv = qkv.unflatten(-1, (3, num_heads, -1)).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = (q @ k.transpose(-2, -1)) * scale
    if bias is not None:
        attn = attn + bias
    if window_mask is not None:
        attn = (attn.unflatten(0, (-1, window_mask.shape[0])) + window_mask).flatten(0, 1)
    attn = attn.softmax(dim=-1)
    return (attn @ v).transpose(1, 2).flatten(2)
