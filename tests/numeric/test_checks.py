"""numeric.checks: one set of argument checks; each public caller keeps its error class."""

import numpy as np
import pytest

from numeric.checks import (
    check_codes,
    check_mixed_args,
    check_order,
    check_range_table,
    int_pair,
    pair,
)
from numeric.errors import ConfigError, FlexiQError


def test_mixed_args_error_classes_are_the_callers():
    check_mixed_args(64, 100, 32, "effective", "group")  # fine: 2 whole groups
    check_mixed_args(100, 100, 64, "naive", "weight")  # fine: n4 == K
    with pytest.raises(ConfigError, match="extraction"):
        check_mixed_args(0, 8, 8, "top", "group", error=ConfigError)
    with pytest.raises(ConfigError, match="weight_shift"):
        check_mixed_args(0, 8, 8, "naive", "row", error=ConfigError)
    for g in (0, True, 8.0):
        with pytest.raises(ValueError, match="group_size"):
            check_mixed_args(0, 8, g, "naive", "group")
    with pytest.raises(KeyError, match="n4=9"):
        check_mixed_args(9, 8, 8, "naive", "group", error=ConfigError, n4_error=KeyError)
    with pytest.raises(KeyError, match="multiple of group_size=8"):
        check_mixed_args(12, 20, 8, "naive", "group", error=ConfigError, n4_error=KeyError)


def test_public_callers_keep_their_classes():
    import gpu_ref
    import npu_sim
    import quant

    x, w = np.zeros((2, 16), np.int64), np.zeros((3, 16), np.int64)
    with pytest.raises(ValueError, match="multiple of group_size") as e:
        quant.mixed_gemm(x, w, 4, group_size=8)
    assert not isinstance(e.value, FlexiQError)
    with pytest.raises(npu_sim.SimError, match="n4=4"):
        npu_sim.run_gemm(x, w, 4, group_size=8)
    with pytest.raises(ConfigError, match="extraction"):
        npu_sim.run_gemm(x, w, 0, extraction="top")
    with pytest.raises(ValueError, match="multiple of group_size"):
        gpu_ref.mixed_gemm(x, w, 4, group_size=8)
    with pytest.raises(npu_sim.SimError, match="run_gemm: activation codes outside"):
        npu_sim.run_gemm(x + 200, w, 0)
    with pytest.raises(npu_sim.SimError, match=r"run_gemm: x_range must be \[2, K=16\]"):
        npu_sim.run_gemm(x, w, 0, x_range=np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x_range must be \[2, K=16\]"):
        quant.mixed_gemm(x, w, 0, x_range=np.zeros((2, 3)))


def test_code_checks_on_numpy_and_torch():
    import torch

    for conv in (np.asarray, torch.as_tensor):
        check_codes(conv(np.array([0, 255])), conv(np.array([-128, 127])), False)
        with pytest.raises(ValueError, match=r"unsigned 8-bit range \[0, 255\]"):
            check_codes(conv(np.array([-1])), conv(np.array([0])), False)
        with pytest.raises(ValueError, match=r"here: weight codes outside"):
            check_codes(conv(np.array([0])), conv(np.array([128])), True, where="here")
        check_codes(conv(np.zeros(0, np.int64)), conv(np.zeros(0, np.int64)), True)


def test_range_table_and_order():
    assert check_range_table(None, 4) is None
    t = check_range_table([[0] * 4, [1] * 4], 4)
    assert t.dtype == np.int64 and t.shape == (2, 4)
    with pytest.raises(ConfigError, match=r"f: x_range must be \[2, C=4\], got \(2, 3\)"):
        check_range_table(np.zeros((2, 3)), 4, error=ConfigError, where="f", dim="C")
    check_order([2, 0, 1], 3)
    with pytest.raises(ValueError, match="permutation of the 3 input channels"):
        check_order([0, 0, 1], 3)


def test_pairs():
    assert pair(3) == (3, 3) and pair((1, 2)) == (1, 2) and pair([4, 5]) == (4, 5)
    assert pair("same") == ("same", "same")  # torch's padding string passes through
    assert int_pair(np.int64(2)) == (2, 2) and type(int_pair((np.int64(1), 2))[0]) is int
    with pytest.raises(ConfigError, match="stride must be an int or a pair"):
        pair((1, 2, 3), "stride", error=ConfigError)
    with pytest.raises(ValueError, match="padding"):
        int_pair("same", "padding")
