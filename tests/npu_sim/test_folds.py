import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npu_sim.folds import (
    count_folds,
    fold_cycles,
    fold_schedule,
    last_start,
    plan_folds,
    scalesim_cycles,
)


@settings(max_examples=50, deadline=None)
@given(F=st.integers(1, 40), M=st.integers(1, 200), R=st.integers(1, 40), C=st.integers(1, 40),
       db=st.booleans())
def test_closed_form_equals_recurrence(F, M, R, C, db):
    _, s = fold_schedule(F, M, R, C, double_buffer=db)
    assert last_start(F, M, R, C, double_buffer=db) == s[-1]


@settings(max_examples=30, deadline=None)
@given(K=st.integers(1, 300), N=st.integers(1, 100), M=st.integers(1, 300),
       R=st.sampled_from([4, 8, 32]), C=st.sampled_from([4, 16, 32]))
def test_scalesim_mode_equals_scalesim_formula(K, N, M, R, C):
    F = -(-K // R) * -(-N // C)
    assert fold_cycles(F, M, R, C, scalesim=True) == scalesim_cycles(K, N, M, R, C)
    _, s = fold_schedule(F, M, R, C, scalesim=True)
    assert s[-1] + M + R + C - 2 == scalesim_cycles(K, N, M, R, C)


def test_double_buffering_hides_weight_loads():
    # M >= R + C: folds stream back to back, one M per fold after the first
    F, M, R, C = 10, 100, 32, 32
    assert fold_cycles(F, M, R, C) == R + F * M + R + C - 2
    assert fold_cycles(F, M, R, C) < fold_cycles(F, M, R, C, double_buffer=False) \
        < fold_cycles(F, M, R, C, scalesim=True)


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 200), kpos=st.sampled_from([1, 4, 9]), g=st.sampled_from([8, 16, 32, 64]),
       R=st.sampled_from([4, 16, 32]), data=st.data())
def test_plan_covers_k_once_and_never_mixes_groups(c, kpos, g, R, data):
    n4 = data.draw(st.sampled_from(sorted({min(c, j * g) for j in range(c // g + 2)})))
    p = plan_folds(c, n4, group_size=g, rows=R, kpos=kpos)
    assert sorted(p.cols.tolist()) == list(range(c * kpos))
    assert p.n_folds == count_folds(c, n4, group_size=g, rows=R, kpos=kpos)
    for f in range(p.n_folds):
        cols = p.fold_cols(f)
        ch = cols % c
        if p.bits[f] == 4:
            assert len(cols) <= 2 * R and np.all(ch < n4)
            assert len(set((ch // g).tolist())) == 1 and p.group[f] == ch[0] // g
        else:
            assert len(cols) <= R and np.all(ch >= n4) and p.group[f] == -1


def test_g64_fold_is_one_group_at_one_kernel_position():
    p = plan_folds(128, 128, group_size=64, rows=32, kpos=9)
    assert p.n_folds == 18 and np.all(p.bits == 4)
    for f in range(p.n_folds):
        cols = p.fold_cols(f)
        assert len(cols) == 64 and len(set((cols // 128).tolist())) == 1
