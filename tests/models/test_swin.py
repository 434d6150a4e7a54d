"""Shifted-window attention with precomputed masks equals torchvision's dynamic algorithm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.swin import ShiftedWindowAttention


def _reference(x, attn: ShiftedWindowAttention, shift: int):
    """torchvision.ops shifted_window_attention (v1), restated step by step."""
    B, H, W, C = x.shape
    ws, heads = attn.ws, attn.num_heads
    pad_r, pad_b = (ws - W % ws) % ws, (ws - H % ws) % ws
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    _, pH, pW, _ = x.shape
    s = [0 if ws >= pH else shift, 0 if ws >= pW else shift]
    if sum(s) > 0:
        x = torch.roll(x, shifts=(-s[0], -s[1]), dims=(1, 2))
    nw = (pH // ws) * (pW // ws)
    x = x.view(B, pH // ws, ws, pW // ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B * nw, ws * ws, C)
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias)
    qkv = qkv.reshape(x.size(0), x.size(1), 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    a = (q * (C // heads) ** -0.5).matmul(k.transpose(-2, -1))
    n = ws * ws
    bias = attn.relative_position_bias_table[attn.relative_position_index].view(n, n, -1)
    a = a + bias.permute(2, 0, 1).unsqueeze(0)
    if sum(s) > 0:
        mask = x.new_zeros((pH, pW))
        cnt = 0
        for h in ((0, -ws), (-ws, -s[0]), (-s[0], None)):
            for w in ((0, -ws), (-ws, -s[1]), (-s[1], None)):
                mask[h[0]: h[1], w[0]: w[1]] = cnt
                cnt += 1
        mask = mask.view(pH // ws, ws, pW // ws, ws).permute(0, 2, 1, 3).reshape(nw, n)
        mask = mask.unsqueeze(1) - mask.unsqueeze(2)
        mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        a = a.view(B, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
        a = a.view(-1, heads, n, n)
    x = a.softmax(-1).matmul(v).transpose(1, 2).reshape(B * nw, n, C)
    x = F.linear(x, attn.proj.weight, attn.proj.bias)
    x = x.view(B, pH // ws, pW // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, pH, pW, C)
    if sum(s) > 0:
        x = torch.roll(x, shifts=(s[0], s[1]), dims=(1, 2))
    return x[:, :H, :W, :]


@pytest.mark.parametrize("res,shift", [(14, 0), (14, 3), (7, 3), (9, 3), (16, 3)])
def test_window_attention_matches_reference(res, shift):
    torch.manual_seed(res + shift)
    attn = ShiftedWindowAttention(32, 4, 7, shift, (res, res)).eval()
    with torch.no_grad():
        attn.qkv.bias.normal_()
        x = torch.randn(2, res, res, 32)
        torch.testing.assert_close(attn(x), _reference(x, attn, shift), rtol=1e-5, atol=1e-5)


def test_relative_position_index_is_torchvision_layout():
    idx = ShiftedWindowAttention(32, 4, 7, 0, (7, 7)).relative_position_index
    assert idx.shape == (2401,) and idx.dtype == torch.int64
    assert int(idx[0]) == 84 and int(idx.max()) == 168  # centre of the 13x13 table; its last cell
    assert idx.view(49, 49).diagonal().eq(84).all()
