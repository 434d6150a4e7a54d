"""The fast search: sensitivity table, linear surrogate, fast greedy and its checkpoint."""

import json

import numpy as np
import pytest

import quant
from quant.select.space import SearchSpace
from quant.select.surrogate import LinearSurrogate, sensitivity_table
from tests.quant.test_select_space import RATIOS, make_case

SMALL = dict(fitness_batch=24, progress=False)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def case():
    return make_case(seed=1)


def test_surrogate_starts_at_the_table_and_learns_an_additive_truth():
    rng = np.random.default_rng(0)
    n = 12
    table = rng.random(n)
    model = LinearSurrogate(table, ridge=1e-6)
    x = rng.random(n) < 0.5
    assert model.predict(x) == pytest.approx(table[x].sum())
    truth = 0.3 + rng.random(n)  # the table ranks wrongly; observations fix it
    X = [rng.random(n) < 0.5 for _ in range(40)]
    model.observe(X, [0.3 + truth[f].sum() for f in X])
    probe = [rng.random(n) < 0.5 for _ in range(10)]
    for f in probe:
        assert model.predict(f) == pytest.approx(0.3 + truth[f].sum(), abs=1e-4)


def test_table_is_each_group_alone(case):
    from quant.select.fitness import SoftLabelFitness

    _, qm, x = case
    sp = SearchSpace(qm)
    fit = SoftLabelFitness(qm, sp, x, batch=24)
    seen = []
    t = sensitivity_table(sp, fit, known={0: 123.0}, on_value=lambda i, v: seen.append(i))
    assert t[0] == 123.0 and 0 not in seen  # known values are not measured again
    full = [i for i in range(sp.n) if not sp.partial[i]]
    for i in full[1:]:
        f = sp.empty()
        f[i] = True
        assert t[i] == pytest.approx(fit(f))
    assert seen == list(range(1, sp.n))


def test_fast_greedy_is_linear_in_groups_and_not_worse_than_range(case):
    _, qm, x = case
    sp = SearchSpace(qm)
    g = quant.select(qm, x, method="greedy", ratios=RATIOS, **SMALL)
    assert g.meta["search"] == "fast"
    assert g.meta["fitness_evaluations"] <= sp.n + len(RATIOS)
    old = quant.select(qm, x, method="greedy", ratios=RATIOS, search="exhaustive", **SMALL)
    assert old.meta["fitness_evaluations"] > g.meta["fitness_evaluations"]


class _Stop(Exception):
    pass


@pytest.mark.parametrize("search", ["fast", "exhaustive"])
def test_greedy_resumes_from_its_checkpoint(case, tmp_path, search, monkeypatch):
    from quant.select import fitness as fitness_mod

    _, qm, x = case
    full = quant.select(qm, x, method="greedy", ratios=RATIOS, search=search, **SMALL)
    ck = tmp_path / "greedy.json"
    calls = {"n": 0}
    real = fitness_mod.SoftLabelFitness.__call__

    def dying(self, flags):
        calls["n"] += 1
        if calls["n"] == 7:
            raise _Stop()
        return real(self, flags)

    monkeypatch.setattr(fitness_mod.SoftLabelFitness, "__call__", dying)
    with pytest.raises(_Stop):
        quant.select(qm, x, method="greedy", ratios=RATIOS, search=search, checkpoint=ck, **SMALL)
    monkeypatch.setattr(fitness_mod.SoftLabelFitness, "__call__", real)
    state = json.loads(ck.read_text())
    assert state["format"] == "flexiq-greedy-checkpoint"
    assert ("table" in state) == (search == "fast")
    again = quant.select(qm, x, method="greedy", ratios=RATIOS, search=search, checkpoint=ck, **SMALL)
    assert again.orders == full.orders
    assert [lv["max4"] for lv in again.levels] == [lv["max4"] for lv in full.levels]
    assert not ck.exists()
    ck.write_text(json.dumps(state))
    with pytest.raises(quant.ConfigError, match="different search"):
        quant.select(qm, x, method="greedy", ratios=(0, 0.5), search=search, checkpoint=ck, **SMALL)


def test_bad_search_name(case):
    _, qm, x = case
    with pytest.raises(quant.ConfigError, match="search"):
        quant.select(qm, x, method="greedy", search="quick")


def test_kl_fitness_is_the_mean_kl_from_the_8bit_soft_labels(case):
    import torch

    from quant.fake_quant import FakeQuantModel
    from quant.select.fitness import SoftLabelFitness

    _, qm, x = case
    sp = SearchSpace(qm)
    fit = SoftLabelFitness(qm, sp, x, batch=24, metric="kl")
    assert fit(sp.empty()) == pytest.approx(0.0, abs=1e-7)
    flags = sp.fill(sp.empty(), sp.target(0.5), np.arange(sp.n))
    fq = FakeQuantModel(qm, precise=False)
    with torch.no_grad():
        ref = torch.log_softmax(fq(fit.x, plan=fit.plan(sp.empty())), dim=-1)
        mixed = torch.log_softmax(fq(fit.x, plan=fit.plan(flags)), dim=-1)
    want = float((ref.exp() * (ref - mixed)).sum(dim=1).mean())
    assert want > 1e-6  # half the budget in 4 bits moves the soft labels
    assert fit(flags) == pytest.approx(want, rel=1e-5)
    with pytest.raises(quant.ConfigError, match="metric"):
        SoftLabelFitness(qm, sp, x, batch=24, metric="mse")


def test_layer_ranking_orders_whole_layers_by_fitness_per_budget(case):
    from quant.select.fitness import SoftLabelFitness
    from quant.select.surrogate import layer_ranking, layer_table

    _, qm, x = case
    sp = SearchSpace(qm)
    fit = SoftLabelFitness(qm, sp, x, batch=24, metric="kl")
    seen, ticks = [], []

    class Bar:
        def update(self, n):
            ticks.append(n)

    t = layer_table(sp, fit, known={0: 5.0}, on_value=lambda li, v: seen.append(li), progress=Bar())
    assert t[0] == 5.0 and seen == list(range(1, len(sp.names)))
    assert sum(ticks) == len(sp.names)  # the bar counts known layers too (a resumed table)
    for li, g in enumerate(sp.layer_groups[1:], start=1):
        f = sp.empty()
        f[g] = True
        assert t[li] == pytest.approx(fit(f))
    order = layer_ranking(sp, t)
    assert sorted(order.tolist()) == list(range(sp.n))  # every group once
    layers = [sp.layer_of[i] for i in order]
    runs = [li for k, li in enumerate(layers) if k == 0 or layers[k - 1] != li]
    assert len(runs) == len(sp.names)  # layer by layer, each layer's groups together
    cost = [t[li] / sp.weight[sp.layer_groups[li]].sum() for li in runs]
    assert cost == sorted(cost)


def test_layer_seed_joins_the_population_and_the_search_resumes(case, tmp_path, monkeypatch):
    from quant.select import fitness as fitness_mod

    _, qm, x = case
    kw = dict(SMALL, method="evolutionary", ratios=RATIOS, metric="kl", layer_seed=True,
              population=6, generations=3)
    full = quant.select(qm, x, **kw)
    assert full.meta["layer_seed"] is True and "KL" in full.meta["fitness"]
    plain = quant.select(qm, x, **dict(kw, layer_seed=False))
    assert full.meta["fitness_evaluations"] > plain.meta["fitness_evaluations"]  # the layer table
    ck = tmp_path / "evo.json"
    calls = {"n": 0}
    real = fitness_mod.SoftLabelFitness.__call__
    n_groups = SearchSpace(qm).n

    def dying(self, flags):
        calls["n"] += 1
        if calls["n"] == n_groups + 3:  # inside the layer table
            raise _Stop()
        return real(self, flags)

    monkeypatch.setattr(fitness_mod.SoftLabelFitness, "__call__", dying)
    with pytest.raises(_Stop):
        quant.select(qm, x, checkpoint=ck, **kw)
    monkeypatch.setattr(fitness_mod.SoftLabelFitness, "__call__", real)
    assert "layer_table" in json.loads(ck.read_text())["extra"]
    again = quant.select(qm, x, checkpoint=ck, **kw)
    assert again.orders == full.orders
    assert [lv["max4"] for lv in again.levels] == [lv["max4"] for lv in full.levels]
