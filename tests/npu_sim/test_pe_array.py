import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npu_sim import NPUConfig, run_gemm
from npu_sim.folds import fold_cycles, plan_folds
from npu_sim.pe_array import run_array


def _run_8bit(x, w, R, C, **kw):
    """All-8-bit fold plan (no shifts) through the cycle-stepped array."""
    plan = plan_folds(x.shape[1], 0, group_size=2 * R, rows=R)
    xs = np.zeros((plan.n_folds, x.shape[0]), np.int64)
    ws = np.zeros((plan.n_folds, w.shape[0]), np.int64)
    acc, cyc, starts = run_array(x, w, plan, xs, ws, rows=R, cols=C, **kw)
    return acc, cyc, starts, plan.n_folds * -(-w.shape[0] // C)


@settings(max_examples=30, deadline=None)
@given(M=st.integers(1, 12), K=st.integers(1, 40), N=st.integers(1, 20),
       R=st.sampled_from([2, 4, 8]), C=st.sampled_from([2, 4, 8]), mode=st.sampled_from(
           ["db", "single", "scalesim"]), seed=st.integers(0, 2**31))
def test_exact_array_8bit_values_and_cycles(M, K, N, R, C, mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (M, K))
    w = rng.integers(-127, 128, (N, K))
    acc, cyc, starts, F = _run_8bit(x, w, R, C, double_buffer=mode == "db",
                                    scalesim=mode == "scalesim")
    assert np.array_equal(acc, x @ w.T)
    assert cyc == fold_cycles(F, M, R, C, double_buffer=mode == "db", scalesim=mode == "scalesim")
    assert len(starts) == F and np.all(np.diff(starts) >= M)


@settings(max_examples=30, deadline=None)
@given(M=st.integers(1, 10), K=st.integers(1, 70), N=st.integers(1, 20),
       G=st.sampled_from([4, 8, 16]), R=st.sampled_from([4, 8]), C=st.sampled_from([4, 8]),
       frac=st.floats(0, 1), dynamic=st.booleans(),
       ws=st.sampled_from(["group", "weight"]), timing=st.sampled_from(["default", "scalesim"]),
       db=st.booleans(), seed=st.integers(0, 2**31))
def test_exact_and_fast_give_identical_values_and_cycles(M, K, N, G, R, C, frac, dynamic, ws,
                                                          timing, db, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (M, K)) >> rng.integers(0, 5, K)
    w = rng.integers(-127, 128, (N, K)) >> rng.integers(0, 5, (N, 1))
    n4 = min(K, int(frac * (K // G + 1)) * G)
    cfg = NPUConfig(rows=R, cols=C, group_size=G, double_buffer=db)
    kw = dict(config=cfg, timing=timing, dynamic=dynamic, weight_shift=ws)
    a = run_gemm(x, w, n4, mode="fast", **kw)
    b = run_gemm(x, w, n4, mode="exact", **kw)
    assert np.array_equal(a.acc, b.acc)
    assert a.cycles == b.cycles
    assert a.stats["folds"] == b.stats["folds"]


def test_4bit_fold_does_two_macs_per_pe():
    # 64 4-bit channels fit one fold of a 32-row array; 64 8-bit channels need two
    rng = np.random.default_rng(0)
    x = rng.integers(-8, 8, (5, 64))
    w = rng.integers(-8, 8, (32, 64))
    r4 = run_gemm(x, w, 64, mode="exact")
    r8 = run_gemm(x, w, 0, mode="exact")
    assert np.array_equal(r4.acc, x @ w.T) and np.array_equal(r8.acc, x @ w.T)
    assert (r4.stats["folds"], r8.stats["folds"]) == (1, 2)
    assert r4.cycles < r8.cycles


def test_register_dtype_is_float32_only_while_fold_sums_stay_below_2_24():
    from npu_sim.pe_array import register_dtype

    x8 = np.array([[255]])
    w8 = np.array([[-128]])
    assert register_dtype(x8, w8, 32) == np.float32   # 4 * 32 * 255 * 128 < 2**24
    assert register_dtype(x8, w8, 128) == np.float32  # 4 * 128 * 255 * 128 < 2**24
    assert register_dtype(x8, w8, 129) == np.float64  # 4 * 129 * 255 * 128 >= 2**24
    assert register_dtype(np.array([[4096]]), np.array([[4096]]), 4) == np.float64


@settings(max_examples=15, deadline=None)
@given(M=st.integers(1, 9), K=st.integers(1, 30), N=st.integers(1, 12),
       R=st.sampled_from([2, 4, 8]), C=st.sampled_from([2, 4, 8]), seed=st.integers(0, 2**31))
def test_wide_operands_take_the_float64_registers_and_stay_exact(M, K, N, R, C, seed):
    # products of 13-bit operands overflow float32's 24-bit integer range: the array must
    # switch to float64 registers and still give the exact integers and cycles
    rng = np.random.default_rng(seed)
    x = rng.integers(-4096, 4097, (M, K))
    w = rng.integers(-4096, 4097, (N, K))
    acc, cyc, _, F = _run_8bit(x, w, R, C)
    assert np.array_equal(acc, x @ w.T)
    assert cyc == fold_cycles(F, M, R, C, double_buffer=True, scalesim=False)


def test_long_runs_cross_many_window_rebases():
    # thousands of cycles on a small array: the activation window re-bases every 4C cycles
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (300, 40))
    w = rng.integers(-127, 128, (9, 40))
    r = run_gemm(x, w, 0, mode="exact", config=NPUConfig(rows=4, cols=4, group_size=8))
    f = run_gemm(x, w, 0, mode="fast", config=NPUConfig(rows=4, cols=4, group_size=8))
    assert np.array_equal(r.acc, x @ w.T) and r.cycles == f.cycles > 100 * 4 * 4
