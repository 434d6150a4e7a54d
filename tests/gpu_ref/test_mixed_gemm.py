"""gpu_ref.mixed_gemm / mixed_linear equal quant's bit for bit (CPU always, CUDA if present)."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpu_ref
import quant

from .conftest import DEVICES
from .strategies import _codes, gemm_problems, quant_gemm

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["auto", "int8", "float64"])
@SETTINGS
@given(problem=gemm_problems())
def test_mixed_gemm_equals_quant(device, backend, problem):
    x, w, n4, kw = problem
    ref, plan = quant_gemm(x, w, n4, return_plan=True, **kw)
    xr = None if kw["x_range"] is None else torch.tensor(kw["x_range"])
    got, gplan = gpu_ref.mixed_gemm(torch.tensor(x, device=device), torch.tensor(w, device=device),
                                    n4, return_plan=True, backend=backend, **dict(kw, x_range=xr))
    assert got.device.type == device and got.dtype == torch.int64
    assert np.array_equal(got.cpu().numpy(), ref)
    assert gplan.bounds == plan.bounds and gplan.weight_shift == plan.weight_shift
    assert np.array_equal(gplan.x_shift, plan.x_shift)
    assert np.array_equal(gplan.w_shift, plan.w_shift)


@SETTINGS
@given(problem=gemm_problems(max_m=8, max_k=70, max_n=6))
def test_int64_backend_equals_quant(problem):
    x, w, n4, kw = problem
    got = gpu_ref.mixed_gemm(torch.tensor(x), torch.tensor(w), n4, backend="int64", **kw)
    assert np.array_equal(got.numpy(), quant_gemm(x, w, n4, **kw))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), b=st.integers(1, 3), r=st.integers(0, 5),
       signed=st.booleans(), dynamic=st.booleans(), ws=st.sampled_from(["group", "weight"]))
def test_mixed_linear_equals_quant(device, seed, b, r, signed, dynamic, ws):
    rng = np.random.default_rng(seed)
    x3 = _codes(rng, (b, r, 150), signed, 256)
    w = _codes(rng, (7, 150), True, 129)
    kw = dict(group_size=32, x_signed=signed, dynamic=dynamic, weight_shift=ws)
    ref = quant.mixed_linear(x3, w, 96, **kw)
    got = gpu_ref.mixed_linear(torch.tensor(x3, device=device), torch.tensor(w, device=device),
                               96, **kw)
    assert np.array_equal(got.cpu().numpy(), ref)


def test_large_m_unsigned_static_saturates_like_quant():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1500, 130))
    w = rng.integers(-128, 128, (40, 130))
    x_range = np.stack([np.zeros(130, dtype=np.int64), np.full(130, 20)])  # calibration too narrow
    kw = dict(group_size=64, x_signed=False, x_range=x_range)
    ref = quant.mixed_gemm(x, w, 128, **kw)
    assert np.array_equal(gpu_ref.mixed_gemm(x, w, 128, backend="int8", **kw), ref)
    assert not np.array_equal(ref, quant.mixed_gemm(x, w, 128, group_size=64, x_signed=False))


def test_numpy_in_numpy_out_and_tensor_in_tensor_out():
    x = np.arange(-32, 32).reshape(4, 16)
    w = np.ones((3, 16), dtype=np.int64)
    out = gpu_ref.mixed_gemm(x, w, 16, group_size=16)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    out_t = gpu_ref.mixed_gemm(torch.tensor(x), w, 16, group_size=16)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.int64
    assert np.array_equal(out, out_t.numpy())
    assert np.array_equal(out, quant.mixed_gemm(x, w, 16, group_size=16))


@pytest.mark.parametrize("bad", [
    dict(n4=10),                                  # not a multiple of the group size
    dict(n4=99),                                  # beyond K
    dict(extraction="top4"),
    dict(weight_shift="row"),
    dict(group_size=0),
    dict(x_range=np.zeros((2, 5))),               # wrong x_range shape
    dict(x=np.full((2, 64), 128)),                # signed code out of range
    dict(x=np.full((2, 64), -1), x_signed=False),  # unsigned code out of range
    dict(w=np.full((3, 64), 200)),
    dict(w=np.ones((3, 60))),                     # K mismatch
])
def test_bad_arguments_raise_like_quant(bad):
    args = dict(x=np.zeros((2, 64), dtype=np.int64), w=np.zeros((3, 64), dtype=np.int64), n4=32,
                group_size=32)
    args.update(bad)
    x, w, n4 = args.pop("x"), args.pop("w"), args.pop("n4")
    with pytest.raises(ValueError):
        quant.mixed_gemm(x, w, n4, **args)
    with pytest.raises(ValueError):
        gpu_ref.mixed_gemm(x, w, n4, **args)
