import numpy as np
import pytest

from experiments.serving import (
    FixedPolicy,
    QueueController,
    ServiceProfile,
    StudyConfig,
    poisson_arrivals,
    rate_profile,
    run_study,
    simulate_queue,
)
from quant.errors import ConfigError

# a synthetic profile: 100 % 4-bit is twice as fast and 2 points less accurate
PROFILE = ServiceProfile([0.0, 0.25, 0.5, 0.75, 1.0], [0.010, 0.009, 0.008, 0.0065, 0.005],
                         [0.90, 0.899, 0.897, 0.893, 0.88])


def burst_trace():
    """0.5x INT8 capacity, then a 1.6x burst, then 0.3x: deterministic (evenly spaced)."""
    seg = [(0.0, 2.0, 50.0), (2.0, 4.0, 160.0), (4.0, 8.0, 30.0)]
    return np.concatenate([np.arange(a, b, 1.0 / rate) for a, b, rate in seg]), seg


def test_controller_raises_under_load_and_lowers_after():
    arr, seg = burst_trace()
    res = simulate_queue(arr, PROFILE, QueueController(5, step=2, hysteresis=2))
    tl = np.array(res.timeline)
    t, ratio = tl[:, 0], tl[:, 2]
    assert ratio[t < 1.9].max() == 0.0  # light load: stays 8-bit
    assert ratio[(t > 2.5) & (t < 4.0)].max() == 1.0  # burst: climbs to 100 % 4-bit
    assert ratio[t > 6.0].max() == 0.0  # after: back to 8-bit
    # the ratio went up step by step and came back down (hysteresis, no jumps over levels)
    levels = [PROFILE.level_of(r) for r in ratio]
    assert max(abs(a - b) for a, b in zip(levels, levels[1:])) <= 4


def test_controller_hysteresis():
    c = QueueController(3, [2, 4], hysteresis=2)
    assert [c.choose(q) for q in (0, 2, 3, 4, 3, 2, 1, 0)] == [0, 1, 1, 2, 2, 1, 1, 0]
    with pytest.raises(ConfigError):
        QueueController(3, [4, 2])
    with pytest.raises(ConfigError):
        QueueController(3, [2, 4], hysteresis=0)


def test_queue_metrics_on_deterministic_trace():
    prof = ServiceProfile([0.0, 1.0], [0.010, 0.005], [0.9, 0.8])
    arr = np.array([0.0, 0.0, 0.0, 0.1])  # three at once, one later
    r8 = simulate_queue(arr, prof, FixedPolicy(0, "int8"))
    np.testing.assert_allclose(r8.latency, [0.010, 0.020, 0.030, 0.010])
    s = r8.summary()
    assert s["median_ms"] == pytest.approx(15.0)
    assert s["mean_accuracy"] == pytest.approx(0.9)
    r4 = simulate_queue(arr, prof, FixedPolicy(1, "int4_100"), batch_size=2)
    np.testing.assert_allclose(r4.finish, [0.010, 0.010, 0.015, 0.105])
    assert r4.summary()["mean_accuracy"] == pytest.approx(0.8)


def test_adaptive_between_fixed_policies_under_fluctuating_load():
    study = run_study(PROFILE, StudyConfig(duration_services=3000, period_services=300, seed=1))
    s = {(r["trace"], r["policy"]): r for r in study["summary"]}
    for trace in ("poisson", "fluctuating"):
        a, i8, i4 = s[(trace, "adaptive")], s[(trace, "int8")], s[(trace, "int4_100")]
        assert a["p90_ms"] < i8["p90_ms"]
        assert i4["mean_accuracy"] < a["mean_accuracy"] <= i8["mean_accuracy"]
    # overload above INT8 capacity: INT8 latency blows up, adaptive holds it
    assert s[("fluctuating", "adaptive")]["median_ms"] < 0.5 * s[("fluctuating", "int8")]["median_ms"]


def test_arrivals_seeded_and_rate():
    a = poisson_arrivals(100.0, 50.0, np.random.default_rng(0))
    b = poisson_arrivals(100.0, 50.0, np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert abs(len(a) - 5000) < 300
    fn = rate_profile("sine", 10.0, 4.0, 0.5, 1.5)
    assert fn(0.0) == pytest.approx(5.0) and fn(2.0) == pytest.approx(15.0)


def test_profile_from_sweep_rows():
    rows = [{"model": "m", "method": "evolutionary", "ratio": r, "cycles": c, "accuracy": a,
             "clock_ghz": 1.0} for r, c, a in [(0.0, 200000, 0.9), (1.0, 100000, 0.85)]]
    rows.append({"model": "m", "method": "hawq", "ratio": 0.0, "cycles": 1, "accuracy": 0.9,
                 "clock_ghz": 1.0})
    p = ServiceProfile.from_sweep(rows, int8_ms=100.0)
    assert p.service_s == pytest.approx([0.1, 0.05])
    assert "evolutionary" in p.source
