"""The shipped Fashion-MNIST models: simulator logits equal the quant runtime's, bit for
bit, at every ratio, static and dynamic extraction (docs/numeric_contract.md; issue 5)."""

import numpy as np
import pytest
import torch

import compiler
import models
import npu_sim
import quant
from models.datasets import load_fashion_mnist, normalize_images

SHIPPED = ["resnet20_fmnist", "mobilenet_v2_fmnist", "vit_tiny_fmnist"]


@pytest.fixture(scope="module")
def data():
    train, _ = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    return normalize_images(train[:64]), normalize_images(test[:2])


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("dynamic", [False, True])
def test_shipped_model_bit_exact(name, dynamic, data):
    calib, x = data
    torch.manual_seed(0)
    qm = quant.quantize(models.get(name, pretrained=True), [calib],
                        quant.QuantConfig(dynamic=dynamic), progress=False)
    prog = compiler.compile(qm, x[:1], name=name)
    xin = compiler.encode_input(prog, x[:1])
    ratios = (0.0, 0.25, 0.5, 0.75, 1.0) if not dynamic else (0.5, 1.0)
    cycles = []
    for r in ratios:
        qm.set_ratio(r)
        ref = qm.run(x[:1]).codes.numpy()
        res = npu_sim.simulate(prog, xin, ratio=r)
        np.testing.assert_array_equal(res.output.reshape(ref.shape), ref, err_msg=f"{name} r={r}")
        cycles.append(res.cycles)
    assert all(b <= a for a, b in zip(cycles, cycles[1:]))
    assert cycles[-1] < cycles[0]
