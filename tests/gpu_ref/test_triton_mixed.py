"""The one-launch mixed kernel: its torch emulation on the CPU, the Triton kernel on CUDA."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpu_ref
import quant
from gpu_ref import triton_mixed as tm

from .strategies import gemm_problems, quant_gemm


def _run(problem, device, kernel):
    x, w, n4, kw = problem
    ref = quant_gemm(x, w, n4, **kw)
    g, signed = kw["group_size"], kw["x_signed"]
    packed = tm.pack_weights(torch.tensor(w, device=device), group_size=g,
                             extraction=kw["extraction"], weight_shift=kw["weight_shift"])
    xt = torch.tensor(x, device=device)
    ex = tm.activation_shift_table(xt, x_range=kw["x_range"], group_size=g, x_signed=signed,
                                   extraction=kw["extraction"], dynamic=kw["dynamic"])
    got = kernel(xt, packed, n4, ex, signed)
    assert got.dtype == torch.int32
    assert np.array_equal(got.cpu().to(torch.int64).numpy(), ref)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=gemm_problems())
def test_emulated_kernel_equals_quant(problem):
    _run(problem, "cpu", lambda x, p, n4, ex, s: tm.emulate(x, p, n4, ex, x_signed=s))


def test_pack_rejects_odd_group_size():
    with pytest.raises(ValueError):
        tm.pack_weights(np.zeros((2, 30)), group_size=24)


def test_launch_refuses_cpu_tensors():
    packed = tm.pack_weights(np.zeros((2, 32)), group_size=32)
    with pytest.raises(RuntimeError):
        tm.launch(torch.zeros((1, 32), dtype=torch.int8), packed,
                  torch.zeros(1, dtype=torch.int32), torch.zeros((1, 1), dtype=torch.int32),
                  x_signed=True)


def _launch(x, packed, n4, ex, signed):
    xk = x.to(torch.int8 if signed else torch.uint8)
    max4 = torch.tensor([n4], dtype=torch.int32, device=x.device)
    return tm.launch(xk, packed, max4, ex, x_signed=signed)


@pytest.mark.cuda
@pytest.mark.skipif(not gpu_ref.triton_ready(), reason="needs a CUDA device and triton")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=gemm_problems(max_m=300, max_k=400, max_n=70))
def test_triton_kernel_equals_quant(problem):
    _run(problem, "cuda", _launch)


@pytest.mark.cuda
@pytest.mark.skipif(not gpu_ref.triton_ready(), reason="needs a CUDA device and triton")
@pytest.mark.parametrize("signed", [True, False])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_triton_every_n4_and_runtime_switch(signed, seed):
    """One packed layer, one max4 tensor: every allowed n4 by writing max4 only."""
    rng = np.random.default_rng(seed)
    m, k, n, g = 33, 200, 24, 64
    x = rng.integers(-128, 128, (m, k)) if signed else rng.integers(0, 256, (m, k))
    w = rng.integers(-128, 128, (n, k))
    packed = tm.pack_weights(torch.tensor(w, device="cuda"), group_size=g)
    xt = torch.tensor(x, device="cuda")
    ex = tm.activation_shift_table(xt, group_size=g, x_signed=signed)
    xk = xt.to(torch.int8 if signed else torch.uint8)
    max4 = torch.zeros(1, dtype=torch.int32, device="cuda")
    for n4 in [0, 64, 128, 192, 200, 64, 0]:
        max4.fill_(n4)
        got = tm.launch(xk, packed, max4, ex, x_signed=signed)
        ref = quant.mixed_gemm(x, w, n4, group_size=g, x_signed=signed)
        assert np.array_equal(got.cpu().to(torch.int64).numpy(), ref), n4
