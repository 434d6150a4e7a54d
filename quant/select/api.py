"""``quant.select``: one entry point for every channel-selection method (SPEC §6)."""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError
from .evolutionary import Evolution
from .fitness import SoftLabelFitness
from .heuristics import greedy_ladder, nested_ladder, random_base_orders, range_scores, ranking
from .selection import Selection
from .space import SearchSpace

METHODS = ("random", "range", "greedy", "evolutionary")
DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _ratios(ratios) -> list:
    try:
        rs = sorted({round(float(r), 12) for r in ratios})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"ratios must be numbers in [0, 1], got {ratios!r}") from exc
    if not rs:
        raise ConfigError("ratios must not be empty")
    bad = [r for r in rs if not 0.0 <= r <= 1.0]
    if bad:
        raise ConfigError(f"ratios must lie in [0, 1], got {bad}")
    return rs


def select(qmodel, calib_data, method: str = "evolutionary", ratios=DEFAULT_RATIOS, seed: int = 0,
           *, budget: str = "macs", population: int = 50, generations: int = 50,
           fitness_batch: int = 64, checkpoint=None, resume: bool = True, progress: bool = True,
           callback=None, elite: int = 2, tournament: int = 3, crossover: float = 0.9,
           mutation: float = 0.7, precise: bool = False) -> Selection:
    """Choose nested 4-bit channel sets of ``qmodel`` for each ratio in ``ratios``.

    ``method``: "random", "range" (analytic range priority), "greedy" (groups added one at a
    time by measured marginal error) or "evolutionary" (seeded from range priority). ``budget``: the ratio counts
    4-bit "macs" (default) or "channels" of the eligible layers. Evolutionary search:
    ``population`` x ``generations``, a ``checkpoint`` JSON file written every generation
    and resumed from when ``resume``; ``callback(ratio, generation, best_fitness)`` after
    every generation. ``fitness_batch``: samples from ``calib_data`` the fitness uses.
    ``qmodel`` is not modified; attach the result with ``qmodel.attach_selection(sel)``.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    rs = _ratios(ratios)
    seed = int(seed)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    base = random_base_orders(qmodel, rng) if method == "random" else None
    space = SearchSpace(qmodel, base, budget)
    fitness = SoftLabelFitness(qmodel, space, calib_data, batch=int(fitness_batch), precise=precise)
    meta = {"fitness_batch": int(fitness.x.shape[0]), "fitness": "mean L2 distance of soft labels "
            "to the 8-bit model (fast fake-quant path)", "quant_config": qmodel.config.to_dict()}
    histories = None
    if method == "random":
        ladder = nested_ladder(space, rs, rng.permutation(space.n))
    elif method == "range":
        ladder = nested_ladder(space, rs, ranking(range_scores(qmodel, space)))
    elif method == "greedy":
        bar = tqdm(total=space.n, desc="greedy", disable=not progress, leave=False)
        ladder = greedy_ladder(space, fitness, rs, bar)
        bar.close()
    else:
        evo = Evolution(space, fitness, rs, ranking(range_scores(qmodel, space)), seed=seed,
                        population=population, generations=generations, elite=elite,
                        tournament=tournament, crossover=crossover, mutation=mutation,
                        checkpoint=checkpoint, resume=resume, progress=progress,
                        callback=callback, signature=_signature(qmodel, fitness))
        results = evo.run()
        ladder = [r["flags"] for r in results]
        histories = [r["history"] for r in results]
        meta.update(population=population, generations=generations, elite=elite,
                    tournament=tournament, crossover=crossover, mutation=mutation)
    space.check_nested(ladder)
    orders = space.nested_orders(ladder)
    levels = []
    for i, (r, flags) in enumerate(zip(rs, ladder)):
        table = {name: 0 for name in qmodel.layers}
        table.update(space.max4(flags))
        lv = {"ratio": r, "max4": table, "fitness": fitness(flags),
              "budget_share": space.share(flags), "mac_share": _mac_share(qmodel, table)}
        if histories is not None:
            lv["history"] = histories[i]
        levels.append(lv)
    meta["fitness_evaluations"] = fitness.evaluations
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    sel = Selection(method=method, ratios=rs, orders={k: v.tolist() for k, v in orders.items()},
                    levels=levels, seed=seed, budget=budget, group_sizes=dict(space.group_sizes),
                    meta=meta)
    sel.check()
    return sel


def _mac_share(qmodel, table) -> float:
    tot = sum(L.macs for L in qmodel.layers.values())
    four = sum(L.macs * table.get(k, 0) / L.in_channels for k, L in qmodel.layers.items())
    return four / tot if tot else 0.0


def _signature(qmodel, fitness) -> dict:
    """What a checkpoint must match to be resumed: model layers, config and fitness data."""
    x = fitness.x
    return {"layers": {k: [L.in_channels, L.out_channels, L.group_size] for k, L in qmodel.layers.items()},
            "config": qmodel.config.to_dict(), "fitness_batch": int(x.shape[0]),
            "data_sum": round(float(x.double().sum()), 6)}
