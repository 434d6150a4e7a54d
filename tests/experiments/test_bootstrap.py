"""Bootstrap confidence intervals over photos (experiments/metrics.py)."""

import numpy as np
import pytest

from experiments.metrics import bootstrap_ci, per_row_kl


def test_interval_brackets_the_mean_and_is_seeded():
    rng = np.random.default_rng(0)
    v = (rng.random(400) < 0.7).astype(float)
    lo, hi = bootstrap_ci(v, seed=3)
    assert lo < v.mean() < hi
    assert 0.07 < hi - lo < 0.12  # about 4 standard errors of a 400-row mean
    assert bootstrap_ci(v, seed=3) == (lo, hi)
    assert bootstrap_ci(v, seed=4) != (lo, hi)


def test_views_of_one_photo_move_together():
    # 40 photos x 10 identical views: resampling photos must give the 40-photo width, not
    # the (too narrow) 400-row width
    rng = np.random.default_rng(1)
    per_photo = (rng.random(40) < 0.5).astype(float)
    v = np.repeat(per_photo, 10)
    groups = np.repeat(np.arange(40), 10)
    lo_g, hi_g = bootstrap_ci(v, groups, seed=0)
    lo_r, hi_r = bootstrap_ci(v, seed=0)
    assert (hi_g - lo_g) > 2 * (hi_r - lo_r)
    lo_p, hi_p = bootstrap_ci(per_photo, seed=0)
    assert abs((hi_g - lo_g) - (hi_p - lo_p)) < 0.06


def test_bad_groups_and_empty():
    with pytest.raises(ValueError, match="group ids"):
        bootstrap_ci([1.0, 0.0], [0])
    assert all(np.isnan(bootstrap_ci([])))


def test_per_row_kl_zero_for_equal_logits():
    a = np.random.default_rng(2).normal(size=(5, 10))
    assert np.allclose(per_row_kl(a, a), 0.0)
    assert np.all(per_row_kl(a + np.eye(5, 10) * 3, a) > 0)
