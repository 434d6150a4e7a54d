import pytest
import torch

import quant
from tests.quant.nets import SmallConvNet, TinyViTBlock, init_bn


def _make(kind, cfg):
    torch.manual_seed(0)
    if kind == "conv":
        m, x = init_bn(SmallConvNet()), torch.randn(16, 1, 12, 12)
    else:
        m, x = TinyViTBlock().eval(), torch.randn(16, 16, 12)
    return quant.quantize(m, [x], quant.QuantConfig(**cfg), progress=False), x


@pytest.fixture(scope="session")
def make_qmodel():
    cache = {}

    def get(kind, **cfg):
        key = (kind, tuple(sorted(cfg.items())))
        if key not in cache:
            cache[key] = _make(kind, cfg)
        return cache[key]

    return get
