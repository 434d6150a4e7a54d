"""The fast fake-quant path used by the search agrees with the exact integer runtime."""

import pytest
import torch

import quant
from quant.fake_quant import FakeQuantModel
from tests.quant.nets import SmallConvNet, TinyViTBlock, init_bn
from tests.quant.test_select_space import make_case

CONFIGS = [quant.QuantConfig(), quant.QuantConfig(dynamic=True), quant.QuantConfig(extraction="naive"),
           quant.QuantConfig(weight_shift="weight")]


pytestmark = pytest.mark.usefixtures("one_thread")



def _nets():
    torch.manual_seed(0)
    yield "conv", init_bn(SmallConvNet()), torch.randn(32, 1, 12, 12)
    torch.manual_seed(1)
    yield "vit", TinyViTBlock().eval(), torch.randn(32, 16, 12)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["static", "dynamic", "naive", "per-weight"])
def test_fake_quant_matches_exact_runtime(cfg):
    for _, m, x in _nets():
        qm = quant.quantize(m, [x[:16], x[16:]], cfg, progress=False)
        fq, fast = FakeQuantModel(qm), FakeQuantModel(qm, precise=False)
        lsb = qm.layers["head"].out_scale
        for r in (0.0, 0.5, 1.0):
            qm.set_ratio(r)
            ye = qm(x)
            # precise mode: float64 requantization; exact on these models
            assert torch.allclose(fq(x), ye, atol=1e-6)
            # search mode (float32 requantization): documented bound, a few output codes
            yf = fast(x)
            assert float((ye - yf).abs().max()) <= 4 * lsb + 1e-6
            assert float((ye.argmax(-1) == yf.argmax(-1)).float().mean()) >= 0.97
        qm.set_ratio(0.0)


def test_plan_override_equals_setting_the_model():
    _, qm, x = make_case(seed=2)
    fq = FakeQuantModel(qm)
    qm.set_ratio(0.5)
    plan = {k: (L.order.copy(), L.max4) for k, L in qm.layers.items()}
    y_exact = qm(x)
    qm.set_ratio(0.0)
    assert torch.allclose(fq(x, plan=plan), y_exact, atol=1e-6)
    assert not torch.allclose(fq(x), y_exact, atol=1e-6)  # the override did not stick
