"""Small float models used by the quant tests."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 64, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(64)
        self.c3 = nn.Conv2d(64, 64, 3, padding=1)
        self.c4 = nn.Conv2d(64, 64, 1)
        self.dw = nn.Conv2d(64, 64, 3, padding=1, groups=64)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 128)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = F.max_pool2d(self.b2(self.c2(x)).relu(), 2)
        y = self.c3(x).relu()
        x = torch.relu(x + self.c4(y))
        x = F.relu6(self.dw(x))
        x = torch.flatten(self.pool(x), 1)
        return self.head(torch.relu(self.fc(x)))


class TinyViTBlock(nn.Module):
    def __init__(self, dim=64, heads=4, tokens=16, classes=10):
        super().__init__()
        self.embed = nn.Linear(12, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.1)
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, classes)
        self.heads = heads
        self.scale = (dim // heads) ** -0.5

    def forward(self, x):  # x: [B, tokens, 12]
        x = self.embed(x)
        b, t, d = x.shape
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1) + self.pos
        h = self.ln1(x)
        qkv = self.qkv(h).reshape(b, t + 1, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(b, t + 1, d)
        x = x + self.proj(o)
        x = x + self.fc2(self.act(self.fc1(self.ln2(x))))
        return self.head(x[:, 0])


def init_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()
