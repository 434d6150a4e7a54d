"""numeric.ratio: the one definition of what a 4-bit ratio means, and every user of it."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numeric.errors import ConfigError, RatioError
from numeric.ratio import (
    Max4Source,
    check_ratio,
    max4_for_ratio,
    ratio_key,
    same_ratio,
    within_budget,
)


@settings(max_examples=200, deadline=None)
@given(c=st.integers(1, 2048), g=st.sampled_from([16, 32, 64]),
       a=st.floats(0, 1), b=st.floats(0, 1))
def test_uniform_rule_whole_groups_monotone_all_at_one(c, g, a, b):
    lo, hi = sorted((a, b))
    n_lo, n_hi = max4_for_ratio(c, g, lo), max4_for_ratio(c, g, hi)
    assert 0 <= n_lo <= n_hi <= c
    assert n_lo % g == 0 or n_lo == c
    assert max4_for_ratio(c, g, 1.0) == c and max4_for_ratio(c, g, 0.0) == 0
    # floor(r * n_groups) groups, with ratios like 0.3 * 10 landing on 3, not 2
    assert n_hi == min(c, math.floor(hi * math.ceil(c / g) + 1e-9) * g)


def test_tolerance_absorbs_float_error():
    assert max4_for_ratio(640, 64, 0.3) == 192  # 0.3 * 10 = 2.9999999999999996
    assert same_ratio(0.1 + 0.2, 0.3) and not same_ratio(0.3, 0.31)
    assert within_budget(3, 0.1 + 0.2, 10) and not within_budget(4, 0.3, 10)


def test_keys_and_refusals():
    assert ratio_key(0.5) == "0.5" and ratio_key("1") == "1" and ratio_key(0.25) == "0.25"
    assert check_ratio("0.75") == 0.75
    for bad in (-0.1, 1.5):
        with pytest.raises(RatioError, match=r"ratio must lie in \[0, 1\]"):
            check_ratio(bad)
    assert issubclass(RatioError, ConfigError)


def test_every_selection_kind_is_a_max4_source():
    from experiments.baselines import LayerwiseSelection
    from quant.select import Selection

    hawq = LayerwiseSelection({"a": [1, 0]}, ["a"], {"a": 10}, {"a": 2}, {"a": 0.1}, [0.5])
    sel = Selection(method="range", ratios=[0.5], orders={"a": [1, 0]},
                    levels=[{"ratio": 0.5, "max4": {"a": 2}}], group_sizes={"a": 2})
    for s in (hawq, sel):
        assert isinstance(s, Max4Source)
    assert sel.max4_for_ratio(0.1 + 0.4) == {"a": 2} and sel.max4_for_ratio(0.25) is None
    assert hawq.max4_for_ratio(0.5) == {"a": 0} and hawq.max4_for_ratio(1.0) == {"a": 2}
    with pytest.raises(RatioError):
        hawq.max4_for_ratio(2.0)


def test_quant_runtime_and_program_use_the_same_definitions():
    import npu_sim.program as program
    import quant.priority as priority

    assert priority.max4_for_ratio is max4_for_ratio
    assert program.ratio_key is ratio_key

