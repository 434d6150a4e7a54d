"""``quant.select``: one entry point for every channel-selection method (docs/selection.md)."""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError
from .checkpoint import SearchCheckpoint
from .evolutionary import Evolution
from .fitness import SoftLabelFitness
from .heuristics import greedy_ladder, nested_ladder, random_base_orders, range_scores, ranking
from .selection import Selection
from .space import SearchSpace, decode, encode
from .surrogate import layer_ranking, layer_table, sensitivity_table

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


SEARCHES = ("fast", "exhaustive")
FAST = dict(population=16, generations=20, screen=4, evaluations=4)
EXHAUSTIVE = dict(population=50, generations=50, fitness_batch=64)
FITNESS_MACS = 2.4e10  # fast search: fitness batch = this many MACs (16..256 images)
GREEDY_FORMAT = "flexiq-greedy-checkpoint"
FITNESS_TEXT = {"l2": "mean L2 distance of soft labels to the 8-bit model (fast fake-quant path)",
                "kl": "mean KL divergence from the 8-bit model's soft labels (fast fake-quant path)"}


def auto_fitness_batch(qmodel) -> int:
    """The fast search's fitness batch: 256 images for small models, fewer for big ones, so
    one forward costs about ``FITNESS_MACS`` multiply-accumulates (at least 16 images)."""
    macs = sum(L.macs for L in qmodel.layers.values()) or 1
    return int(min(256, max(16, FITNESS_MACS // macs)))


def select(qmodel, calib_data, method: str = "evolutionary", ratios=DEFAULT_RATIOS, seed: int = 0,
           *, budget: str = "macs", search: str = "fast", population: int | None = None,
           generations: int | None = None, fitness_batch: int | None = None, checkpoint=None,
           resume: bool = True, progress: bool = True, callback=None, elite: int = 2,
           tournament: int = 3, crossover: float = 0.9, mutation: float = 0.7,
           screen: int = 4, evaluations: int = 4, precise: bool = False, metric: str | None = None,
           layer_seed: bool | None = None) -> Selection:
    """Choose nested 4-bit channel sets of ``qmodel`` for each ratio in ``ratios``.

    ``method``: "random", "range" (analytic range priority), "greedy" (groups ranked by
    measured error per unit budget) or "evolutionary". ``budget``: the ratio counts 4-bit
    "macs" (default) or "channels" of the eligible layers.

    ``search="fast"`` (default): a sensitivity table (each group alone in 4 bits, one forward
    per group) ranks the groups for greedy and seeds the evolutionary search, whose
    children are screened with a linear surrogate (the table corrected by the true
    evaluations): ``screen`` x ``population`` children per generation, ``evaluations`` of them
    truly evaluated. Defaults: population 16, 20 generations, fitness batch
    ``auto_fitness_batch`` (256 images for small models). ``search="exhaustive"``: the
    original searches (greedy measures every candidate at every step; evolutionary evaluates
    every child; population 50, 50 generations, fitness batch 64).

    ``metric``: the fitness, "kl" (mean KL divergence from the 8-bit model's soft labels; the
    fast search's default) or "l2" (mean L2 distance between the soft labels; the exhaustive
    search's default, as originally). ``layer_seed`` (fast evolutionary search; default on):
    measure each eligible layer wholly in 4 bits once (one forward per layer) and add the
    layer-wise ladder this ranks to the initial population, so the search starts from the
    better of the group-wise and the layer-wise (HAWQ-style) solution.

    ``checkpoint``: a JSON file written atomically as the search goes (greedy and
    evolutionary), resumed from when ``resume``, removed after success;
    ``callback(ratio, generation, best_fitness)`` after every generation. ``fitness_batch``:
    samples from ``calib_data`` the fitness uses. ``qmodel`` is not modified; attach the
    result with ``qmodel.attach_selection(sel)``.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    if search not in SEARCHES:
        raise ConfigError(f"search must be one of {SEARCHES}, got {search!r}")
    rs = _ratios(ratios)
    seed = int(seed)
    if metric is None:
        metric = "kl" if search == "fast" else "l2"
    if layer_seed is None:
        layer_seed = search == "fast"
    t0 = time.perf_counter()
    defaults = FAST if search == "fast" else EXHAUSTIVE
    population = int(population if population is not None else defaults["population"])
    generations = int(generations if generations is not None else defaults["generations"])
    if fitness_batch is None:
        fitness_batch = auto_fitness_batch(qmodel) if search == "fast" else defaults["fitness_batch"]
    rng = np.random.default_rng(seed)
    base = random_base_orders(qmodel, rng) if method == "random" else None
    space = SearchSpace(qmodel, base, budget)
    fitness = SoftLabelFitness(qmodel, space, calib_data, batch=int(fitness_batch), precise=precise,
                               metric=metric)
    meta = {"fitness_batch": int(fitness.x.shape[0]), "fitness": FITNESS_TEXT[metric],
            "quant_config": qmodel.config.to_dict()}
    if method in ("greedy", "evolutionary"):
        meta["search"] = search
    histories = None
    store = None
    if method == "random":
        ladder = nested_ladder(space, rs, rng.permutation(space.n))
    elif method == "range":
        ladder = nested_ladder(space, rs, ranking(range_scores(qmodel, space)))
    elif method == "greedy":
        sig = dict(_signature(qmodel, fitness), ratios=rs, budget=budget, search=search,
                   groups=int(space.n))
        store = SearchCheckpoint(checkpoint, GREEDY_FORMAT, sig, resume)
        ladder = _greedy(space, fitness, rs, search, store, progress)
    else:
        evo = Evolution(space, fitness, rs, ranking(range_scores(qmodel, space)), seed=seed,
                        population=population, generations=generations, elite=elite,
                        tournament=tournament, crossover=crossover, mutation=mutation,
                        checkpoint=checkpoint, resume=resume, progress=progress,
                        callback=callback, signature=_signature(qmodel, fitness),
                        surrogate=search == "fast", screen=screen, evaluations=evaluations,
                        layer_seed=bool(layer_seed) and search == "fast")
        store = evo.store
        if search == "fast":
            known, keep = _saved_table(evo, "table")
            table = _measured(sensitivity_table, space.n, "sensitivity", space, fitness, known,
                              keep, progress)
            evo.table = table
            evo.prefer = ranking(table / space.weight)  # the seed: fast greedy's ladder
            if layer_seed:  # a second seed: whole layers, ranked by their own measured fitness
                known, keep = _saved_table(evo, "layer_table")
                lt = _measured(layer_table, len(space.names), "layer table", space, fitness,
                               known, keep, progress)
                evo.seeds = [layer_ranking(space, lt)]
        results = evo.run()
        ladder = [r["flags"] for r in results]
        histories = [r["history"] for r in results]
        meta.update(population=population, generations=generations, elite=elite,
                    tournament=tournament, crossover=crossover, mutation=mutation)
        if search == "fast":
            meta.update(screen=screen, evaluations=evaluations, layer_seed=bool(layer_seed))
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
    if store is not None:
        store.remove()  # the search finished: its checkpoint has served
    return sel


def _saved_table(evo, key: str):
    """``(known, keep)`` for a measured table kept in the evolution's checkpoint under
    ``key``: the values a resumed search already has, and a callback that records a new
    value and writes the checkpoint at once."""
    state = evo.saved_state() or {}
    known = {int(k): v for k, v in state.get("extra", {}).get(key, {}).items()}
    evo.extra[key] = {str(k): v for k, v in known.items()}

    def keep(i, v):
        evo.extra[key][str(i)] = v
        evo._save({"done": state.get("done", []), "current": state.get("current")})

    return known, keep


def _measured(measure, total, desc, space, fitness, known, on_value, progress) -> np.ndarray:
    """A measured table (``sensitivity_table`` or ``layer_table``) under a progress bar."""
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    try:
        return measure(space, fitness, known, on_value, bar)
    finally:
        bar.close()


def _greedy(space, fitness, rs, search, store, progress) -> list:
    """Greedy ladder, fast (table ranking) or exhaustive, checkpointed in ``store``."""
    state = store.load() or {}
    for k, v in state.get("fitness_cache", {}).items():
        fitness.cache.setdefault(k, float(v))
    if search == "fast":
        known = {int(k): v for k, v in state.get("table", {}).items()}
        saved = {str(k): v for k, v in known.items()}

        def keep(i, v):
            saved[str(i)] = v
            store.save({"table": saved})

        table = _measured(sensitivity_table, space.n, "sensitivity", space, fitness, known, keep,
                          progress)
        return nested_ladder(space, rs, ranking(table / space.weight))
    n = space.n
    resume = None
    if "flags" in state:
        resume = {"flags": decode(state["flags"], n), "ladder": [decode(f, n) for f in state["ladder"]]}

    def step(st):
        store.save({"flags": encode(st["flags"]), "ladder": [encode(f) for f in st["ladder"]],
                    "fitness_cache": fitness.cache})

    bar = tqdm(total=n, desc="greedy", disable=not progress, leave=False)
    try:
        return greedy_ladder(space, fitness, rs, bar, state=resume, on_step=step)
    finally:
        bar.close()


def _mac_share(qmodel, table) -> float:
    tot = sum(L.macs for L in qmodel.layers.values())
    four = sum(L.macs * table.get(k, 0) / L.in_channels for k, L in qmodel.layers.items())
    return four / tot if tot else 0.0


def _signature(qmodel, fitness) -> dict:
    """What a checkpoint must match to be resumed: model layers, config and fitness data."""
    x = fitness.x
    return {"layers": {k: [L.in_channels, L.out_channels, L.group_size] for k, L in qmodel.layers.items()},
            "config": qmodel.config.to_dict(), "fitness_batch": int(x.shape[0]),
            "metric": fitness.metric,
            "data_sum": round(float(x.double().sum()), 6)}
