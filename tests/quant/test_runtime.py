"""End-to-end integer runtime: small conv net and ViT block, ratio control, errors."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

import quant
from quant.priority import max4_for_ratio, nested_sets
from tests.quant.nets import SmallConvNet, TinyViTBlock, init_bn


@pytest.fixture(scope="module")
def conv_case():
    torch.manual_seed(0)
    m = init_bn(SmallConvNet())
    x = torch.randn(48, 1, 12, 12)
    qm = quant.quantize(m, [x[:24], x[24:]], progress=False)
    return m, qm, x


@pytest.fixture(scope="module")
def vit_case():
    torch.manual_seed(1)
    m = TinyViTBlock().eval()
    x = torch.randn(48, 16, 12)
    qm = quant.quantize(m, [x[:24], x[24:]], progress=False)
    return m, qm, x


def _lsb_error(qm, m, x, head="head"):
    with torch.no_grad():
        ref = m(x)
    return float((qm(x) - ref).abs().max()) / qm.layers[head].out_scale


def test_conv_net_8bit_close_to_float(conv_case):
    m, qm, x = conv_case
    qm.set_ratio(0.0)
    assert _lsb_error(qm, m, x) <= 6
    # BatchNorm was folded: the float graph the quantizer runs equals the model
    torch.testing.assert_close(qm.float_forward(x), m(x), rtol=1e-4, atol=1e-5)


def test_vit_block_8bit_close_to_float(vit_case):
    m, qm, x = vit_case
    qm.set_ratio(0.0)
    assert _lsb_error(qm, m, x) <= 16


@pytest.mark.parametrize("case", ["conv_case", "vit_case"])
def test_ratio_changes_results_not_weights(case, request):
    m, qm, x = request.getfixturevalue(case)
    weights = {k: L.w_codes.copy() for k, L in qm.layers.items()}
    qm.set_ratio(0.0)
    y0 = qm.run(x).codes.clone()
    qm.set_ratio(1.0)
    y1 = qm.run(x).codes.clone()
    assert not torch.equal(y0, y1)
    assert all(np.array_equal(weights[k], L.w_codes) for k, L in qm.layers.items())
    assert qm.four_bit_mac_share() > 0.3
    qm.set_ratio(0.0)
    assert torch.equal(qm.run(x).codes, y0)  # switching back restores the 8-bit result


def test_default_8bit_layers(conv_case, vit_case):
    _, qm, _ = conv_case
    qm.set_ratio(1.0)
    assert qm.layers["c1"].max4 == 0 and qm.layers["c1"].why_8bit == "first layer"
    assert qm.layers["dw"].max4 == 0 and "depthwise" in qm.layers["dw"].why_8bit
    assert qm.layers["head"].max4 == 0
    assert qm.layers["c3"].max4 == 64
    qm.set_ratio(0.0)
    with pytest.raises(quant.ConfigError, match="kept in 8 bits"):
        qm.set_max4({"c1": 16})
    with pytest.raises(quant.ConfigError, match="multiple of its group size"):
        qm.set_max4({"c3": 10})


def test_dynamic_and_static_agree_when_calibration_covers(conv_case):
    m, qm, x = conv_case
    cfg = quant.QuantConfig(dynamic=True)
    qd = quant.quantize(m, [x], cfg, progress=False)
    qd.set_ratio(1.0)
    qm.set_ratio(1.0)
    a, b = qd(x), qm(x)
    assert a.shape == b.shape
    agree = float((a.argmax(1) == b.argmax(1)).float().mean())
    assert agree > 0.5
    qm.set_ratio(0.0)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8), st.integers(1, 300), st.sampled_from([16, 32, 64]))
def test_nested_ratio_ladder(ratios, channels, g):
    ratios = sorted(ratios)
    counts = [max4_for_ratio(channels, g, r) for r in ratios]
    assert counts == sorted(counts)
    assert all(c % g == 0 or c == channels for c in counts)
    assert max4_for_ratio(channels, g, 1.0) == channels and max4_for_ratio(channels, g, 0.0) == 0
    order = np.random.default_rng(channels).permutation(channels)
    sets = nested_sets(order, counts)
    assert all(a <= b for a, b in zip(sets, sets[1:]))


def test_priority_ranks_small_channels_first():
    from quant.priority import lowering_error, priority_order

    w = np.full((4, 3), 20)
    err = lowering_error(w, x_lo=np.array([-100, -7, -30]), x_hi=np.array([100, 7, 30]),
                         x_mean_sq=np.array([900.0, 9.0, 100.0]), x_signed=True)
    assert priority_order(err).tolist() == [1, 2, 0]


# ---- bad input ------------------------------------------------------------------------
class Custom(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x)


def test_unsupported_op_is_named():
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh())
    with pytest.raises(quant.UnsupportedOpError, match=r"Tanh.*node"):
        quant.quantize(m, [torch.randn(2, 1, 5, 5)], progress=False)
    with pytest.raises(quant.UnsupportedOpError, match="sigmoid"):
        quant.quantize(nn.Sequential(nn.Linear(3, 3), Custom()), [torch.randn(2, 3)], progress=False)


def test_non_finite_weights():
    m = nn.Sequential(nn.Linear(3, 3))
    m[0].weight.data[0, 0] = float("nan")
    with pytest.raises(quant.ModelError, match=r"0\.weight"):
        quant.quantize(m, [torch.randn(2, 3)], progress=False)


def test_empty_calibration():
    with pytest.raises(quant.CalibrationError, match="empty"):
        quant.quantize(nn.Sequential(nn.Linear(3, 3)), [], progress=False)


def test_ratio_out_of_range(conv_case):
    _, qm, _ = conv_case
    for r in (-0.1, 1.5):
        with pytest.raises(quant.ConfigError, match=r"\[0, 1\]"):
            qm.set_ratio(r)


def test_bad_config_field():
    with pytest.raises(quant.ConfigError, match="extraction"):
        quant.QuantConfig(extraction="msb")
    with pytest.raises(quant.ConfigError, match="unknown field"):
        quant.QuantConfig.from_dict({"group": 3})


def test_overflow_names_layer():
    m = nn.Sequential(nn.Linear(4000, 2))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    x = torch.ones(1, 4000)
    qm = quant.quantize(m, [x], quant.QuantConfig(first_layer_8bit=False, head_8bit=False), progress=False)
    qm.layers["_0"].w_codes[:] = 127  # force a sum beyond int32: 4000 * 127 * 127 * ... via huge input
    qm.layers["_0"].bias[:] = 2**31 - 10
    with pytest.raises(quant.AccumulatorOverflowError, match="_0"):
        qm.run(x)
