"""gpu_ref.mixed_conv2d equals quant.mixed_conv2d bit for bit."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings

import gpu_ref
import quant

from .conftest import DEVICES
from .strategies import conv_problems


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["auto", "int8"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=conv_problems())
def test_mixed_conv2d_equals_quant(device, backend, problem):
    x, w, n4, kw = problem
    ref = quant.mixed_conv2d(x, w, n4, **kw)
    got = gpu_ref.mixed_conv2d(torch.tensor(x, device=device), torch.tensor(w, device=device),
                               n4, backend=backend, **kw)
    assert got.device.type == device and tuple(got.shape) == ref.shape
    assert np.array_equal(got.cpu().numpy(), ref)


def test_conv_rejects_bad_order():
    x = np.zeros((1, 4, 3, 3), dtype=np.int64)
    w = np.zeros((2, 4, 1, 1), dtype=np.int64)
    with pytest.raises(ValueError):
        gpu_ref.mixed_conv2d(x, w, 4, order=[0, 1, 1, 2], group_size=4)


def test_conv_numpy_in_numpy_out():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 20, 6, 6))
    w = rng.integers(-128, 128, (5, 20, 3, 3))
    kw = dict(group_size=16, x_signed=False, padding=1, stride=2, order=rng.permutation(20))
    out = gpu_ref.mixed_conv2d(x, w, 16, **kw)
    assert isinstance(out, np.ndarray)
    assert np.array_equal(out, quant.mixed_conv2d(x, w, 16, **kw))
