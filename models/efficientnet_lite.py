"""EfficientNet-Lite0/1/2 (ReLU6, no squeeze-excitation, fixed stem and head), with the key naming
of the packaged ImageNet checkpoints (lukemelas/EfficientNet-PyTorch: ``_conv_stem``, ``_bn0``,
``_blocks.{i}._expand_conv`` / ``_depthwise_conv`` / ``_project_conv``, ``_conv_head``, ``_fc``).

The weights come from TensorFlow, whose "SAME" padding is asymmetric for stride-2 convs (the extra
row/column goes bottom/right). The input size is fixed at build time, so each conv gets either a
symmetric ``padding=`` or, where TF pads asymmetrically, an ``nn.ZeroPad2d`` in front of it
(``_pad`` modules, no parameters).
"""

from __future__ import annotations

import math

import torch
from torch import nn

BN_EPS = 1e-3
# (repeats, kernel, stride, expansion, in, out) of EfficientNet-B0, shared by every Lite variant
BASE_BLOCKS = [
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
]
# name: (width multiplier, depth multiplier, resolution, dropout)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
}


def round_filters(c: int, width: float, divisor: int = 8) -> int:
    c = c * width
    new = max(divisor, int(c + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * c else new)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) along one axis, and the output size."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2), out


def _conv(cin, cout, k, stride, size, groups=1) -> tuple[nn.Conv2d, nn.Module | None, int]:
    (lo, hi), out = _same_padding(size, k, stride)
    if lo == hi:
        return nn.Conv2d(cin, cout, k, stride, lo, groups=groups, bias=False), None, out
    pad = nn.ZeroPad2d((lo, hi, lo, hi))
    return nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=False), pad, out


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, size: int):
        super().__init__()
        hidden = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, eps=BN_EPS)
            self._act0 = nn.ReLU6()
        self._depthwise_conv, self._pad, self.out_size = _conv(hidden, hidden, kernel, stride, size,
                                                               groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, eps=BN_EPS)
        self._act1 = nn.ReLU6()
        self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._act0(self._bn0(self._expand_conv(x))) if self.has_expand else x
        if self._pad is not None:
            out = self._pad(out)
        out = self._act1(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return x + out if self.residual else out


class EfficientNetLite(nn.Module):
    def __init__(self, width: float, depth: float, image_size: int, dropout: float = 0.2,
                 num_classes: int = 1000, in_chans: int = 3):
        super().__init__()
        self._conv_stem, self._stem_pad, size = _conv(in_chans, 32, 3, 2, image_size)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        self._act0 = nn.ReLU6()
        blocks, cin = [], 32
        for i, (r, k, s, e, _, c) in enumerate(BASE_BLOCKS):
            cout = round_filters(c, width)
            # Lite keeps the first and last stage's repeat count (and the stem/head width) fixed
            repeats = r if i in (0, len(BASE_BLOCKS) - 1) else int(math.ceil(depth * r))
            for j in range(repeats):
                block = MBConv(cin, cout, k, s if j == 0 else 1, e, size)
                blocks.append(block)
                cin, size = cout, block.out_size
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._act1 = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._stem_pad is not None:
            x = self._stem_pad(x)
        x = self._act0(self._bn0(self._conv_stem(x)))
        x = self._act1(self._bn1(self._conv_head(self._blocks(x))))
        x = torch.flatten(self._avg_pooling(x), 1)
        return self._fc(self._dropout(x))


def _variant(name: str, **kw) -> EfficientNetLite:
    width, depth, size, dropout = VARIANTS[name]
    kw.setdefault("image_size", size)
    return EfficientNetLite(width, depth, dropout=dropout, **kw)


def efficientnet_lite0(**kw) -> EfficientNetLite:
    return _variant("efficientnet_lite0", **kw)


def efficientnet_lite1(**kw) -> EfficientNetLite:
    return _variant("efficientnet_lite1", **kw)


def efficientnet_lite2(**kw) -> EfficientNetLite:
    return _variant("efficientnet_lite2", **kw)
