"""Selection methods and the evolutionary search: elitism, nesting, resume, determinism, JSON."""

import json

import numpy as np
import pytest

import quant
from quant.select import Selection
from tests.quant.test_select_space import RATIOS, make_case

SMALL = dict(population=8, generations=4, fitness_batch=24, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def case():
    return make_case(seed=1)


@pytest.fixture(scope="module")
def evo(case):
    _, qm, x = case
    return quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=5, **SMALL)


def _flags_of(sel):
    return json.dumps([lv["max4"] for lv in sel.levels], sort_keys=True), json.dumps(sel.orders, sort_keys=True)


def test_elitism_best_fitness_never_increases(evo):
    for lv in evo.levels:
        h = lv["history"]
        assert len(h) >= 1
        assert all(b <= a for a, b in zip(h, h[1:])), h
        assert lv["fitness"] == pytest.approx(h[-1])


def test_search_improves_on_its_seed(evo, case):
    _, qm, x = case
    # the fast search starts from fast greedy's ladder, the exhaustive one from range priority
    greedy = quant.select(qm, x, method="greedy", ratios=RATIOS, seed=5, **SMALL)
    for a, b in zip(evo.levels, greedy.levels):
        assert a["fitness"] <= b["fitness"] + 1e-12
    old = quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=5, search="exhaustive", **SMALL)
    rng = quant.select(qm, x, method="range", ratios=RATIOS, seed=5, metric="l2", **SMALL)
    for a, b in zip(old.levels, rng.levels):
        assert a["fitness"] <= b["fitness"] + 1e-12  # seeded from range priority + elitism


@pytest.mark.parametrize("method", ["random", "range", "greedy", "evolutionary"])
def test_every_method_gives_nested_ladder_within_budget(case, method, evo):
    _, qm, x = case
    sel = evo if method == "evolutionary" else quant.select(qm, x, method=method, ratios=RATIOS,
                                                           seed=2, **SMALL)
    sel.check()
    from quant.select.space import SearchSpace

    sp = SearchSpace(qm)
    gmax = sp.weight.max() / sp.total
    prev = None
    for lv in sel.levels:
        assert lv["ratio"] - gmax - 1e-9 < lv["budget_share"] <= lv["ratio"] + 1e-9
        sets = {k: set(sel.orders[k][:n]) for k, n in lv["max4"].items() if k in sel.orders}
        if prev is not None:
            assert all(prev[k] <= sets[k] for k in sets)  # nesting invariant
        prev = sets
    assert sel.levels[0]["fitness"] == 0.0


def test_channel_budget(case):
    _, qm, x = case
    sel = quant.select(qm, x, method="evolutionary", ratios=(0.5,), seed=0, budget="channels", **SMALL)
    from quant.select.space import SearchSpace

    sp = SearchSpace(qm, budget="channels")
    n4 = sum(sel.levels[0]["max4"].values())
    assert 0.5 * sp.total - max(sp.sizes) < n4 <= 0.5 * sp.total


def test_same_seed_same_selection_other_seed_may_differ(case, evo):
    _, qm, x = case
    again = quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=5, **SMALL)
    assert _flags_of(again) == _flags_of(evo)
    r1 = quant.select(qm, x, method="random", ratios=RATIOS, seed=1, **SMALL)
    r2 = quant.select(qm, x, method="random", ratios=RATIOS, seed=1, **SMALL)
    r3 = quant.select(qm, x, method="random", ratios=RATIOS, seed=2, **SMALL)
    assert _flags_of(r1) == _flags_of(r2)
    assert _flags_of(r1) != _flags_of(r3)


@pytest.mark.parametrize("search", ["fast", "exhaustive"])
def test_search_ignores_an_attached_selection(search):
    """A selection attached to the model (its orders replace the layers' ``order``) does not
    change the space of a later search: the same selection as on a freshly quantized model."""
    _, qm, x = make_case(seed=1)
    kw = dict(SMALL, method="evolutionary", ratios=RATIOS, seed=3, search=search)
    fresh = quant.select(qm, x, **kw)
    other = quant.select(qm, x, method="random", ratios=RATIOS, seed=9, **SMALL)
    qm.attach_selection(other)
    assert any(not np.array_equal(qm.layers[k].order, qm.layers[k].priority)
               for k in other.orders)  # the attached orders are not the quantizer's own
    again = quant.select(qm, x, **kw)
    assert _flags_of(again) == _flags_of(fresh)
    assert again.meta["fitness_evaluations"] == fresh.meta["fitness_evaluations"]
    import torch

    from experiments.baselines import hawq_selection, layer_sensitivity

    h = hawq_selection(qm, torch.as_tensor(x), RATIOS)
    assert all(h.orders[k] == qm.layers[k].priority.tolist() for k in h.orders)
    attached = {k: L.order.copy() for k, L in qm.layers.items()}
    exact = layer_sensitivity(qm, torch.as_tensor(x), exact=True)
    assert all(np.array_equal(qm.layers[k].order, o) for k, o in attached.items())  # restored
    _, qm2, _ = make_case(seed=1)  # nothing attached
    assert h.sensitivity == hawq_selection(qm2, torch.as_tensor(x), RATIOS).sensitivity
    assert exact == layer_sensitivity(qm2, torch.as_tensor(x), exact=True)


def _detach(qm, saved):
    qm.selection = None
    for k, o in saved.items():
        qm.layers[k].order = o
    qm.set_ratio(0.0)


class _Kill(Exception):
    pass


@pytest.mark.parametrize("search", ["fast", "exhaustive"])
def test_resume_after_kill_equals_uninterrupted(case, evo, tmp_path, search):
    _, qm, x = case
    if search == "exhaustive":
        evo = quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=5, search=search, **SMALL)
    ck = tmp_path / "evo.json"
    seen = []

    def killer(ratio, gen, best):
        seen.append((ratio, gen))
        if ratio == 0.5 and gen == 2:
            raise _Kill()

    with pytest.raises(_Kill):
        quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=5, checkpoint=ck,
                     callback=killer, search=search, **SMALL)
    saved = ck.read_text()
    state = json.loads(saved)
    assert state["current"]["generation"] == 2 and len(state["done"]) == 2
    resumed_from = []
    sel = quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=5, checkpoint=ck,
                       callback=lambda r, g, b: resumed_from.append((r, g)), search=search, **SMALL)
    assert resumed_from[0] == (0.5, 3)  # it did not start over
    assert _flags_of(sel) == _flags_of(evo)
    assert [lv["fitness"] for lv in sel.levels] == [lv["fitness"] for lv in evo.levels]
    assert not ck.exists()  # removed after the successful run
    # a checkpoint of another search is refused rather than silently reused
    ck.write_text(saved)
    with pytest.raises(quant.ConfigError, match="different search"):
        quant.select(qm, x, method="evolutionary", ratios=RATIOS, seed=6, checkpoint=ck,
                     search=search, **SMALL)


def test_json_round_trip_and_attach(case, evo, tmp_path):
    _, qm, x = case
    p = tmp_path / "sel.json"
    evo.save(p)
    back = Selection.load(p)
    assert back.to_dict() == evo.to_dict()
    saved = {k: L.order.copy() for k, L in qm.layers.items()}
    qm.attach_selection(back)
    try:
        for r in RATIOS:
            qm.set_ratio(r)
            assert qm.max4 == back.max4_for_ratio(r)
            for name, n4 in qm.max4.items():
                assert set(qm.layers[name].order[:n4].tolist()) == set(back.orders.get(name, [])[:n4])
        assert back.max4_for_ratio(0.6) is None
    finally:
        _detach(qm, saved)


def test_bad_arguments(case, tmp_path):
    _, qm, x = case
    with pytest.raises(quant.ConfigError, match="method"):
        quant.select(qm, x, method="annealing")
    with pytest.raises(quant.ConfigError, match="ratios"):
        quant.select(qm, x, method="range", ratios=(0.5, 1.5))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(quant.ConfigError, match="not a FlexiQ selection"):
        Selection.load(bad)
    with pytest.raises(quant.DataMissingError):
        Selection.load(tmp_path / "missing.json")
    d = json.loads(json.dumps(quant.select(qm, x, method="range", ratios=(0.5, 1.0), **SMALL).to_dict()))
    d["levels"][0]["max4"], d["levels"][1]["max4"] = d["levels"][1]["max4"], d["levels"][0]["max4"]
    if d["levels"][0]["max4"] != d["levels"][1]["max4"]:
        with pytest.raises(quant.ConfigError, match="nested"):
            Selection.from_dict(d)


def test_attach_changes_results_through_orders(case, evo):
    _, qm, x = case
    qm.set_ratio(0.5)
    y_default = qm.run(x[:8]).codes.clone()
    saved = {k: L.order.copy() for k, L in qm.layers.items()}
    qm.attach_selection(evo)
    try:
        qm.set_ratio(0.5)
        assert qm.max4 == evo.max4_for_ratio(0.5)
        y_sel = qm.run(x[:8]).codes
        assert y_sel.shape == y_default.shape
    finally:
        _detach(qm, saved)
    assert np.isfinite(evo.levels[-1]["fitness"])
