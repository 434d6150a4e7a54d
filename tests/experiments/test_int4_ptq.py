"""The uniform INT4 PTQ baseline built from FP32: clipping searches, 4-bit exact tables, and
bit-exact simulation in 4-bit folds on a small model."""

import numpy as np
import pytest
import torch

from experiments import npu_run
from experiments.int4_ptq import int4_ptq_quantize, mse_act_scale_int4, mse_weight_int4
from quant import QuantConfig
from quant.extraction import rshift_rne
from tests.experiments.test_sweep_e2e import tiny


def test_weight_clipping_search_beats_max_scaling():
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, size=(8, 16, 3, 3))  # heavy tails: clipping pays
    q, s = mse_weight_int4(w)
    assert q.shape == w.shape and q.dtype == np.int64 and np.abs(q).max() <= 7
    flat = w.reshape(8, -1)
    mx = np.abs(flat).max(axis=1)
    err = ((flat - q.reshape(8, -1) * s[:, None]) ** 2).sum(1)
    q_max = np.clip(np.rint(flat / (mx / 7)[:, None]), -7, 7)
    err_max = ((flat - q_max * (mx / 7)[:, None]) ** 2).sum(1)
    assert np.all(err <= err_max + 1e-12) and np.any(s < mx / 7 - 1e-9)


def test_activation_clipping_search():
    rng = np.random.default_rng(1)
    v = np.concatenate([np.abs(rng.normal(size=10_000)), [40.0]])  # one outlier
    s = mse_act_scale_int4(v, signed=False)
    assert s < 40.0 / 15 / 2  # the outlier is clipped
    err = ((v - np.clip(np.rint(v / s), 0, 15) * s) ** 2).mean()
    err_max = ((v - np.clip(np.rint(v / (40 / 15)), 0, 15) * (40 / 15)) ** 2).mean()
    assert err < err_max


@pytest.fixture(scope="module")
def ptq():
    torch.manual_seed(0)
    calib = [torch.randn(16, 1, 28, 28)]
    return int4_ptq_quantize(tiny(), calib, QuantConfig(extraction="naive"))


def test_tables_hold_exact_4bit_weights_and_activations(ptq):
    eligible = [L for L in ptq.layers.values() if L.eligible]
    assert eligible
    for L in eligible:
        assert np.all(L.w_codes % 16 == 0) and np.abs(L.w_codes).max() <= 112
        w4 = rshift_rne(L.w_codes, 4)  # the naive extraction returns the 4-bit codes exactly
        assert np.array_equal(w4 * 16, L.w_codes)
    for L in ptq.layers.values():
        if not L.eligible:
            assert np.abs(L.w_codes).max() == 127  # 8-bit layers keep the 8-bit rule
    ptq.set_ratio(1.0)
    assert ptq.four_bit_mac_share() > 0.5


@pytest.mark.skipif(not npu_run.compiler_available(), reason="compiler / simulator not available")
def test_int4_ptq_simulates_bit_exactly_in_4bit_folds(ptq):
    torch.manual_seed(2)
    x = torch.randn(1, 1, 28, 28)
    prog = npu_run.compile_program(ptq, x, ratios=[0.0, 1.0])
    for r in (0.0, 1.0):
        ptq.set_ratio(r)
        res = npu_run.simulate(prog, ptq, x, r)
        ref = ptq.run(x).codes.numpy()
        assert np.array_equal(npu_run.output_codes(res, prog).reshape(-1), ref.reshape(-1))
        if r == 1.0:
            assert res.stats["gemm"]["folds4"] > 0
