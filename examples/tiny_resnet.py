"""A small user model for `flexiq compile examples/tiny_resnet.py:tiny_resnet` (README,
"Your own model"): 3x32x32 input, residual blocks with a single conv in the branch, a
channel concatenation before a conv, and a 10-way linear head. Random (seeded) weights.
"""

import torch
from torch import nn


class TinyResNet(nn.Module):
    def __init__(self, width: int = 64, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.block1 = nn.Conv2d(width, width, 3, padding=1)
        self.down = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.side = nn.Conv2d(width, width, 1, stride=2)
        self.mix = nn.Conv2d(2 * width, 2 * width, 1)
        self.block2 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        y = self.stem(x)
        y = torch.relu(self.block1(y) + y)  # residual branch with one conv
        y = torch.cat([torch.relu(self.down(y)), torch.relu(self.side(y))], dim=1)
        y = torch.relu(self.mix(y))  # concat before a conv
        y = torch.relu(self.block2(y) + y)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def tiny_resnet() -> nn.Module:
    """The factory `flexiq` calls: returns the module (eval mode is set by the tools)."""
    torch.manual_seed(0)
    return TinyResNet()
