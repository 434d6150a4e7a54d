"""Finetuning: the dual forward pass lowers the distillation loss and improves 100 % 4-bit."""

import pytest
import torch
import torch.nn as nn

import quant
from quant.fake_quant import FakeQuantModel
from quant.finetune import finetune, finetune_float, unfold_into
from tests.quant.nets import SmallConvNet, init_bn
from tests.quant.test_select_space import make_case

pytestmark = pytest.mark.usefixtures("one_thread")


def _agree(a, b):
    return float((a.argmax(-1) == b.argmax(-1)).float().mean())


def test_unfold_round_trip_keeps_the_function():
    torch.manual_seed(0)
    m = init_bn(SmallConvNet())
    x = torch.randn(8, 1, 12, 12)
    qm = quant.quantize(m, x, progress=False)
    gm = qm.gm
    with torch.no_grad():
        for p in gm.parameters():
            p.add_(0.01 * torch.randn_like(p))
        want = gm(x)
    back = unfold_into(m, gm)
    assert set(back.state_dict()) == set(m.state_dict())
    assert isinstance(back.b1, nn.BatchNorm2d)  # the architecture is unchanged
    with torch.no_grad():
        torch.testing.assert_close(back(x), want, rtol=1e-4, atol=1e-4)


def test_finetune_improves_full_4bit_fidelity():
    m, qm, x = make_case(seed=4, n=96)
    with torch.no_grad():
        y = m(x).argmax(-1)  # the float model's labels: a task it solves exactly
    train = [(x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    qm.set_ratio(1.0)
    before = _agree(qm(x), torch.nn.functional.one_hot(y, 10).float())
    fq = FakeQuantModel(qm)
    kl_before = float(torch.nn.functional.kl_div(fq(x).log_softmax(-1), fq(x, plan={
        k: (L.order, 0) for k, L in qm.layers.items()}).softmax(-1), reduction="batchmean"))
    qm2 = finetune(qm, train, model=m, ratios=[0.5, 1.0], steps=60, lr=2e-3, seed=0, progress=False)
    h = qm2.finetune_result.history
    first = sum(s["kl"] + s["ce_mixed"] for s in h[:10]) / 10
    last = sum(s["kl"] + s["ce_mixed"] for s in h[-10:]) / 10
    assert last < first
    assert set(qm2.finetune_result.model.state_dict()) == set(m.state_dict())
    qm2.set_ratio(1.0)
    after = _agree(qm2(x), torch.nn.functional.one_hot(y, 10).float())
    fq2 = FakeQuantModel(qm2)
    kl_after = float(torch.nn.functional.kl_div(fq2(x).log_softmax(-1), fq2(x, plan={
        k: (L.order, 0) for k, L in qm2.layers.items()}).softmax(-1), reduction="batchmean"))
    assert after >= before
    assert after > before or kl_after < kl_before
    assert kl_after < kl_before


def test_finetune_is_deterministic():
    m, qm, x = make_case(seed=5, n=32)
    with torch.no_grad():
        y = m(x).argmax(-1)
    a = finetune_float(qm, [(x, y)], model=m, steps=3, lr=1e-3, seed=1, progress=False)
    b = finetune_float(qm, [(x, y)], model=m, steps=3, lr=1e-3, seed=1, progress=False)
    assert [s["loss"] for s in a.history] == [s["loss"] for s in b.history]
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k])


def test_finetune_without_labels_or_float_model_keeps_selection():
    _, qm, x = make_case(seed=6, n=32)
    sel = quant.select(qm, x, method="range", ratios=(0.0, 0.5, 1.0), progress=False)
    qm.attach_selection(sel)
    qm.set_ratio(0.5)
    try:
        qm2 = finetune(qm, [x[:16], x[16:]], steps=4, lr=1e-3, progress=False)  # the sweep's call
    finally:
        qm.selection = None
        qm.set_ratio(0.0)
    assert qm2.selection is sel and qm2.ratio == 0.5
    assert qm2.max4 == sel.max4_for_ratio(0.5)
    assert len(qm2.finetune_result.history) == 4
    assert qm2(x).shape == (32, 10)


def test_distillation_without_labels_brings_the_mixed_model_closer_to_8_bits():
    m, _, x = make_case(seed=4, n=96)
    lin = [mod for mod in m.modules() if isinstance(mod, nn.Linear)][-1]
    with torch.no_grad():  # confident logits, so that the softmax targets carry information
        lin.weight.mul_(60)
        lin.bias.mul_(60)
    qm = quant.quantize(m, [x[:48], x[48:]], quant.QuantConfig(group_size=32), progress=False)
    batches = [x[i:i + 32] for i in range(0, 96, 32)]  # unlabelled
    res = finetune_float(qm, batches, model=m, ratios=[1.0], steps=40, lr=1e-4, seed=0, progress=False)
    h = res.history
    assert all(s["mode"] == "distill" and "ce8" not in s for s in h)
    first = sum(s["kl"] for s in h[:6]) / 6
    last = sum(s["kl"] for s in h[-6:]) / 6
    assert last < 0.5 * first  # the mixed path moved towards the original 8-bit model
    assert sum(s["kl8"] for s in h[-6:]) / 6 < last  # and the 8-bit path stayed closer still


def test_auto_budget_scales_with_model_cost():
    from quant.finetune import auto_budget

    _, qm, _ = make_case(seed=4, n=32)
    batch, steps = auto_budget(qm)
    assert batch == 64 and steps == 200  # a tiny model gets the full budget
    for L in qm.layers.values():
        L.macs = L.macs * 10**6
    batch, steps = auto_budget(qm)
    assert batch == 8 and steps == 30


def test_sweep_ft_methods_distill_on_unlabelled_calibration_data(monkeypatch):
    import quant.finetune as ft
    from experiments.methods import prepare_qmodel

    monkeypatch.setattr(ft, "FT_MACS", 0)  # the automatic budget's fewest steps (30): a fast test
    m, _, x = make_case(seed=7, n=32)
    calib = [x[:16], x[16:]]  # what the sweep passes: unlabelled batches
    qm = prepare_qmodel("greedy+ft", m, calib, [0.0, 0.5, 1.0], seed=0)
    h = qm.finetune_result.history
    assert len(h) == 30 and all(s["mode"] == "distill" for s in h)
    assert qm.selection is not None and qm.selection.meta["search"] == "fast"


class _Stop(Exception):
    pass


def test_finetune_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    m, qm, x = make_case(seed=5, n=32)
    data = [x[:16], x[16:]]
    kw = dict(model=m, steps=6, lr=1e-3, seed=1, progress=False, save_every=2)
    full = finetune_float(qm, data, **kw)
    ck = tmp_path / "ft.ckpt"
    real = torch.optim.AdamW.step
    calls = {"n": 0}

    def dying(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise _Stop()
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", dying)
    with pytest.raises(_Stop):
        finetune_float(qm, data, checkpoint=str(ck), **kw)
    monkeypatch.setattr(torch.optim.AdamW, "step", real)
    assert ck.exists()
    again = finetune_float(qm, data, checkpoint=str(ck), **kw)
    assert [s["loss"] for s in again.history] == [s["loss"] for s in full.history]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    assert not ck.exists()
