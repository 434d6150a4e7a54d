"""Exactness of the integer matmul backends at the edges of their ranges."""

import numpy as np
import pytest
import torch

from gpu_ref import int_matmul as im

from .conftest import DEVICES


def _exact(a, b):
    return torch.tensor(np.asarray(a, dtype=object).dot(np.asarray(b, dtype=object).T).astype(np.int64))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (17, 8, 8), (40, 13, 9)])
def test_int8_unsigned_offset_extremes(device, m, k, n):
    a = torch.full((m, k), 255)
    a[0, 0] = 0
    b = torch.full((n, k), -128)
    b[-1, -1] = 127
    got = im.int_matmul(a.to(device), b.to(device), backend="int8", a_offset=128).cpu()
    assert torch.equal(got, a @ b.T)


@pytest.mark.parametrize("device", DEVICES)
def test_int8_k_chunking_is_exact(device, monkeypatch):
    monkeypatch.setattr(im, "INT8_K_CHUNK", 8)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (19, 37), generator=g)
    b = torch.randint(-128, 128, (11, 37), generator=g)
    assert torch.equal(im.int_matmul(a.to(device), b.to(device), backend="int8").cpu(), a @ b.T)


def test_float64_splits_k_beyond_2_pow_53():
    # 3 terms near 2**52: their exact sum is odd and above 2**53, so one float64 sum rounds
    a = torch.tensor([[2**26 + 1] * 3], dtype=torch.int64)
    b = torch.tensor([[2**26 - 1] * 3], dtype=torch.int64)
    got = im.int_matmul(a, b, backend="float64")
    assert int(got[0, 0]) == 3 * (2**26 + 1) * (2**26 - 1)
    assert torch.equal(got, _exact(a.numpy(), b.numpy()))


def test_backend_checks():
    with pytest.raises(ValueError):
        im.resolve_backend("fast", torch.device("cpu"))
    with pytest.raises(ValueError):
        im.resolve_backend("int64", torch.device("cuda"))
    assert im.resolve_backend("auto", torch.device("cpu")) == "float64"
    assert im.resolve_backend("auto", torch.device("cuda")) == "int8"


@pytest.mark.parametrize("backend", ["int8", "float64", "int64"])
def test_empty_shapes(backend):
    out = im.int_matmul(torch.zeros((0, 4), dtype=torch.int64),
                        torch.zeros((3, 4), dtype=torch.int64), backend=backend)
    assert out.shape == (0, 3) and out.dtype == torch.int64
