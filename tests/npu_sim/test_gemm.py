import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quant
from npu_sim import NPUConfig, run_conv2d, run_gemm, scalesim_cycles
from npu_sim.folds import fold_cycles
from quant.errors import FlexiQError

SMALL = NPUConfig(rows=8, cols=8, group_size=16)


def _codes(rng, shape, signed, shifts_axis=None):
    x = rng.integers(-128, 128, shape) if signed else rng.integers(0, 256, shape)
    if shifts_axis is not None:  # vary channel ranges so effective extraction matters
        x = x >> rng.integers(0, 5, shape[shifts_axis]).reshape(
            [-1 if i == shifts_axis else 1 for i in range(len(shape))])
    return x


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 40), K=st.integers(1, 200), N=st.integers(1, 50),
       G=st.sampled_from([8, 16, 32, 64]), frac=st.floats(0, 1), signed=st.booleans(),
       extraction=st.sampled_from(["effective", "naive"]), dynamic=st.booleans(),
       ws=st.sampled_from(["group", "weight"]), use_range=st.booleans(),
       seed=st.integers(0, 2**31))
def test_run_gemm_bit_exact_fast(M, K, N, G, frac, signed, extraction, dynamic, ws, use_range,
                                 seed):
    rng = np.random.default_rng(seed)
    x = _codes(rng, (M, K), signed, 1)
    w = _codes(rng, (N, K), True, 0)
    w[w == -128] = -127
    n4 = K if frac > 0.95 else min(K, int(frac * (K // G + 1)) * G)
    x_range = None
    if use_range and not dynamic:  # calibration narrower than run time: saturation allowed
        x_range = np.stack([x.min(0) // 2, x.max(0) // 2])
    kw = dict(group_size=G, x_signed=signed, extraction=extraction, dynamic=dynamic,
              weight_shift=ws, x_range=x_range)
    ref = quant.mixed_gemm(x, w, n4, **kw)
    res = run_gemm(x, w, n4, **kw)
    assert res.acc.dtype == np.int64 and np.array_equal(res.acc, ref)
    assert res.cycles == fold_cycles(res.stats["folds"], M, 32, 32)


@settings(max_examples=25, deadline=None)
@given(M=st.integers(1, 6), K=st.integers(1, 60), N=st.integers(1, 20), frac=st.floats(0, 1),
       dynamic=st.booleans(), ws=st.sampled_from(["group", "weight"]), seed=st.integers(0, 2**31))
def test_run_gemm_bit_exact_exact_mode(M, K, N, frac, dynamic, ws, seed):
    rng = np.random.default_rng(seed)
    x = _codes(rng, (M, K), True, 1)
    w = _codes(rng, (N, K), True, 0)
    n4 = min(K, int(frac * (K // 16 + 1)) * 16)
    ref = quant.mixed_gemm(x, w, n4, group_size=16, dynamic=dynamic, weight_shift=ws)
    res = run_gemm(x, w, n4, config=SMALL, mode="exact", dynamic=dynamic, weight_shift=ws)
    assert np.array_equal(res.acc, ref)


@pytest.mark.parametrize("M,K,N", [(1, 32, 32), (7, 100, 50), (64, 64, 64), (200, 300, 10),
                                   (3136, 576, 64)])
def test_scalesim_mode_equals_scalesim_count(M, K, N):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (M, K))
    w = rng.integers(-127, 128, (N, K))
    res = run_gemm(x, w, 0, timing="scalesim")
    assert res.cycles == scalesim_cycles(K, N, M, 32, 32)
    assert np.array_equal(res.acc, x @ w.T)


def test_scalesim_mode_exact_array_equals_count():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (5, 40))
    w = rng.integers(-127, 128, (12, 40))
    cfg = NPUConfig(rows=8, cols=8)
    res = run_gemm(x, w, 0, config=cfg, mode="exact", timing="scalesim")
    assert res.cycles == scalesim_cycles(40, 12, 5, 8, 8)


def test_more_4bit_means_fewer_cycles():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (196, 512))
    w = rng.integers(-127, 128, (256, 512))
    cyc = [run_gemm(x, w, n4).cycles for n4 in (0, 128, 256, 384, 512)]
    assert cyc == sorted(cyc, reverse=True) and cyc[0] > cyc[-1]


@settings(max_examples=20, deadline=None)
@given(B=st.integers(1, 2), C=st.integers(1, 40), H=st.integers(3, 8), O=st.integers(1, 12),
       k=st.sampled_from([1, 3]), G=st.sampled_from([4, 8, 16]), frac=st.floats(0, 1),
       stride=st.integers(1, 2), padding=st.integers(0, 1), dynamic=st.booleans(),
       ws=st.sampled_from(["group", "weight"]), mode=st.sampled_from(["fast", "exact"]),
       seed=st.integers(0, 2**31))
def test_run_conv2d_bit_exact(B, C, H, O, k, G, frac, stride, padding, dynamic, ws, mode, seed):
    rng = np.random.default_rng(seed)
    x = _codes(rng, (B, C, H, H), True, 1)
    w = _codes(rng, (O, C, k, k), True, 1)
    n4 = min(C, int(frac * (C // G + 1)) * G)
    kw = dict(order=rng.permutation(C), group_size=G, dynamic=dynamic, weight_shift=ws,
              stride=stride, padding=padding)
    ref = quant.mixed_conv2d(x, w, n4, **kw)
    res = run_conv2d(x, w, n4, config=SMALL, mode=mode, **kw)
    assert np.array_equal(res.acc, ref)


def test_conv_exact_and_fast_cycles_agree():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (1, 20, 5, 5))
    w = rng.integers(-127, 128, (10, 20, 3, 3))
    a = run_conv2d(x, w, 16, config=SMALL, padding=1)
    b = run_conv2d(x, w, 16, config=SMALL, padding=1, mode="exact")
    assert a.cycles == b.cycles and np.array_equal(a.acc, b.acc)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="slow"), "mode"),
    (dict(timing="nope"), "timing"),
    (dict(extraction="top"), "extraction"),
    (dict(weight_shift="row"), "weight_shift"),
    (dict(group_size=0), "group_size"),
])
def test_bad_arguments_are_named(kwargs, match):
    x = np.zeros((2, 64), np.int64)
    w = np.zeros((3, 64), np.int64)
    with pytest.raises(FlexiQError, match=match):
        run_gemm(x, w, 0, **kwargs)


def test_bad_shapes_and_codes():
    with pytest.raises(FlexiQError, match="n4"):
        run_gemm(np.zeros((2, 64)), np.zeros((3, 64)), 30)
    with pytest.raises(FlexiQError, match=r"x \[M, K\]"):
        run_gemm(np.zeros((2, 64)), np.zeros((3, 63)), 0)
    with pytest.raises(FlexiQError, match="activation codes"):
        run_gemm(np.full((2, 4), 200), np.zeros((3, 4)), 0)
    with pytest.raises(FlexiQError, match="unsigned"):
        run_gemm(np.full((2, 4), -1), np.zeros((3, 4)), 0, x_signed=False)
    with pytest.raises(FlexiQError, match="permutation"):
        run_conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 1, 1)), 0, order=[0, 0, 1])
