"""Evolutionary channel selection over a nested ladder of 4-bit ratios.

A chromosome is one 4-bit flag per channel group per layer (quant/select/space.py). For
each ratio, in ascending order, a population evolves under the constraint that every
individual contains the set chosen at the previous ratio (locked groups), so the result is
one priority order per layer valid for every ratio.

* initial population: the range-priority selection, plus copies of it with 1-3 random
  mutations each (screened mode: the seed is fast greedy's ladder, and with ``layer_seed``
  a whole-layer ladder joins it as a second seed);
* parents: tournament selection; ``elite`` best individuals survive unchanged (so the best
  fitness never increases from one generation to the next);
* crossover: each layer's flags come whole from one parent or the other (it exchanges whole
  layers, which moves 4-bit budget between layers), then a random budget repair;
* mutation: either moves a 4-bit group within a layer (one of its unlocked 4-bit groups off,
  one of its 8-bit groups on: same budget) or frees a random unlocked group and refills the
  budget with random groups elsewhere (moves budget between layers);
* fitness: quant/select/fitness.py (KL divergence or L2 distance of the soft labels from the
  8-bit model's), cached;
* screened mode (``surrogate=True``, the fast search's default): the seed comes from the
  sensitivity table's ranking, and each generation ranks ``screen`` x population children
  with a linear surrogate (quant/select/surrogate.py) and truly evaluates only the best
  ``evaluations``; the population is the best of old and new (steady state).

Every random choice draws from one ``numpy`` generator seeded by ``seed``. After the initial
population and after every generation the whole state (population, scores, generator state,
fitness cache, finished ratios) is written atomically to the checkpoint file; a search
resumed from it replays exactly what an uninterrupted search does.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError
from .checkpoint import SearchCheckpoint
from .space import SearchSpace, decode, encode
from .surrogate import LinearSurrogate

CHECKPOINT_FORMAT = "flexiq-evolution-checkpoint"


class Evolution:
    def __init__(self, space: SearchSpace, fitness, ratios, prefer, *, seed=0, population=50,
                 generations=50, elite=2, tournament=3, crossover=0.9, mutation=0.7,
                 checkpoint=None, resume=True, progress=True, callback=None, signature=None,
                 surrogate=False, screen=4, evaluations=4, extra=None, layer_seed=False):
        if population < 2:
            raise ConfigError(f"population must be at least 2, got {population}")
        if generations < 0:
            raise ConfigError(f"generations must be >= 0, got {generations}")
        if not 0 < elite < population:
            raise ConfigError(f"elite must lie in [1, population), got {elite}")
        self.space, self.fitness = space, fitness
        self.ratios = list(ratios)
        self.prefer = np.asarray(prefer)  # seeding order: the range-priority ranking
        self.seed = int(seed)
        self.P, self.G, self.elite = int(population), int(generations), int(elite)
        self.k, self.pc, self.pm = int(tournament), float(crossover), float(mutation)
        self.progress = progress
        self.callback = callback
        # surrogate: rank children with a per-group sensitivity table (``self.table``, set
        # before ``run``; quant/select/surrogate.py) corrected by true evaluations: each generation breeds ``screen`` x population children, ranks them with the
        # surrogate and truly evaluates only the best ``evaluations`` of them; the population
        # is the best of the old one and the new evaluated children (steady state).
        self.screened = bool(surrogate)
        self.table = None  # set before run() when screened (it may come from the checkpoint)
        self.screen, self.n_eval = int(screen), int(evaluations)
        if self.screened and (self.screen < 1 or self.n_eval < 1):
            raise ConfigError("screen and evaluations must be at least 1")
        self.extra = dict(extra or {})  # saved along with every state (e.g. the table)
        self.seeds: list = []  # more seeding orders (set before ``run``): each gives one individual
        sig = dict(signature or {}, ratios=self.ratios, seed=self.seed,
                   population=self.P, generations=self.G, elite=self.elite,
                   tournament=self.k, crossover=self.pc, mutation=self.pm,
                   groups=int(space.n), space_layers=list(space.names), budget=space.budget)
        if self.screened:
            sig.update(surrogate=True, screen=self.screen, evaluations=self.n_eval)
        if layer_seed:
            sig.update(layer_seed=True)
        self.signature = sig
        self.store = SearchCheckpoint(checkpoint, CHECKPOINT_FORMAT, sig, resume)
        self._state = None
        self._loaded = False
        self._observed: list = []  # (flags, true fitness) of this level, for the surrogate

    def saved_state(self) -> dict | None:
        """The checkpointed state (validated; None when starting fresh)."""
        if not self._loaded:
            self._state = self.store.load()
            self._loaded = True
            if self._state is not None:
                for k, v in self._state.get("fitness_cache", {}).items():
                    self.fitness.cache.setdefault(k, float(v))
        return self._state

    # ---- genetic operators -----------------------------------------------------------------
    def _tournament(self, rng, scores):
        idx = rng.choice(len(scores), size=min(self.k, len(scores)), replace=False)
        return int(min(idx, key=lambda i: (scores[i], i)))

    def _crossover(self, rng, a, b):
        child = a.copy()
        take_b = rng.random(len(self.space.names)) < 0.5
        for li, g in enumerate(self.space.layer_groups):
            if take_b[li]:
                child[g] = b[g]
        return child

    def _move_within(self, rng, flags, locked):
        sp = self.space
        cands = []
        for g in sp.layer_groups:
            full = g[~sp.partial[g]]
            if np.any(flags[g[sp.partial[g]]]):
                continue
            on = full[flags[full] & ~locked[full]]
            off = full[~flags[full]]
            if len(on) and len(off):
                cands.append((on, off))
        if not cands:
            return None
        on, off = cands[int(rng.integers(len(cands)))]
        flags = flags.copy()
        flags[on[int(rng.integers(len(on)))]] = False
        flags[off[int(rng.integers(len(off)))]] = True
        return flags

    def _move_between(self, rng, flags, locked, target):
        sp = self.space
        rem = [i for i in range(sp.n) if sp.removable(flags, i, locked)]
        if not rem:
            return flags.copy()
        flags = flags.copy()
        flags[rem[int(rng.integers(len(rem)))]] = False
        return sp.fill(flags, target, rng.permutation(sp.n))

    def _mutate(self, rng, flags, locked, target):
        if rng.random() < 0.5:
            moved = self._move_within(rng, flags, locked)
            if moved is not None:
                return moved
        return self._move_between(rng, flags, locked, target)

    def _child(self, rng, pop, scores, locked, target):
        a = pop[self._tournament(rng, scores)]
        if rng.random() < self.pc:
            b = pop[self._tournament(rng, scores)]
            child = self.space.repair(self._crossover(rng, a, b), target, locked, rng)
        else:
            child = a.copy()
        if rng.random() < self.pm:
            child = self._mutate(rng, child, locked, target)
            if rng.random() < 0.3:
                child = self._mutate(rng, child, locked, target)
        return child

    # ---- checkpoint ------------------------------------------------------------------------
    def _save(self, state):
        self.store.save(dict(state, extra=self.extra, fitness_cache=self.fitness.cache))

    # ---- the search ------------------------------------------------------------------------
    def run(self) -> list:
        """Returns one dict per ratio: flags, fitness, history (best per generation)."""
        sp = self.space
        n = sp.n
        state = self.saved_state()
        done = [] if state is None else state["done"]
        cur = None if state is None else state.get("current")
        t0 = time.perf_counter()
        total = len(self.ratios) * (self.G + 1)
        bar = tqdm(total=total, desc="evolve", disable=not self.progress, leave=False)
        bar.update(sum(self.G + 1 for _ in done))
        results = [dict(r, flags=decode(r["flags"], n)) for r in done]
        prev = results[-1]["flags"] if results else sp.empty()
        for li in range(len(done), len(self.ratios)):
            ratio = self.ratios[li]
            target = sp.target(ratio)
            locked = prev.copy()
            if target <= sp._eps or target >= sp.total - sp._eps:  # ratio 0 or 1: one choice
                flags = sp.fill(locked, target, self.prefer)
                f = self.fitness(flags)
                rec = {"ratio": ratio, "flags": encode(flags), "fitness": f, "history": [f]}
                done = done + [rec]
                results.append(dict(rec, flags=flags))
                prev, cur = flags, None
                self._save({"done": done, "current": None})
                bar.update(self.G + 1)
                continue
            if cur is not None and cur["level"] == li:
                rng = np.random.default_rng()
                rng.bit_generator.state = cur["rng"]
                pop = [decode(h, n) for h in cur["population"]]
                scores = [float(s) for s in cur["scores"]]
                history = list(cur["history"])
                self._observed = [tuple(o) for o in cur.get("observed", [])]
                gen0 = int(cur["generation"]) + 1
                bar.update(gen0)
            else:
                rng = np.random.default_rng([self.seed, li])
                seed_ind = sp.fill(locked, target, self.prefer)
                self._observed = []
                pop = self._initial(rng, seed_ind, locked, target)
                scores = [self._score(p) for p in pop]
                history = [min(scores)]
                gen0 = 1
                self._checkpoint(li, 0, pop, scores, rng, history, done)
                bar.update(1)
            model = self._model()
            for gen in range(gen0, self.G + 1):
                if model is None:
                    pop, scores = self._generation(rng, pop, scores, locked, target)
                else:
                    pop, scores = self._screened_generation(rng, pop, scores, locked, target, model)
                history.append(min(scores))
                self._checkpoint(li, gen, pop, scores, rng, history, done)
                bar.update(1)
                bar.set_postfix(ratio=f"{ratio:g}", best=f"{history[-1]:.5f}")
                if self.callback is not None:
                    self.callback(ratio, gen, history[-1])
            best = min(range(len(pop)), key=lambda i: (scores[i], i))
            rec = {"ratio": ratio, "flags": encode(pop[best]), "fitness": scores[best],
                   "history": history}
            done = done + [rec]
            results.append(dict(rec, flags=pop[best]))
            prev = pop[best]
            cur = None
            self._save({"done": done, "current": None})
        bar.close()
        self.elapsed = time.perf_counter() - t0
        return results

    def _checkpoint(self, li, gen, pop, scores, rng, history, done):
        self._save({"done": done, "current": {
            "level": li, "generation": gen, "population": [encode(p) for p in pop],
            "scores": scores, "rng": rng.bit_generator.state, "history": history,
            "observed": [list(o) for o in self._observed]}})

    # ---- one generation ----------------------------------------------------------------
    def _score(self, flags) -> float:
        """True fitness, remembered as an observation of this level for the surrogate."""
        f = self.fitness(flags)
        if self.table is not None:
            self._observed.append((encode(flags), f))
        return f

    def _model(self):
        if self.table is None:
            return None
        model = LinearSurrogate(self.table)
        if self._observed:
            model.observe([decode(k, self.space.n) for k, _ in self._observed],
                          [v for _, v in self._observed])
        return model

    def _initial(self, rng, seed_ind, locked, target) -> list:
        """The seed plus mutated copies (with a surrogate: the best-predicted of ``screen``
        times as many, distinct)."""
        want = self.P - 1
        cands = []
        for i in range(want * (self.screen if self.table is not None else 1)):
            ind = seed_ind
            for _ in range(1 + (i + 1) % 3):
                ind = self._mutate(rng, ind, locked, target)
            cands.append(ind)
        if self.table is None:
            return [seed_ind] + cands
        model = LinearSurrogate(self.table)
        seen, uniq = {encode(seed_ind)}, []
        for c in cands:
            k = encode(c)
            if k not in seen:
                seen.add(k)
                uniq.append(c)
        rank = sorted(range(len(uniq)), key=lambda i: (model.predict(uniq[i]), i))
        extra = []
        for order in self.seeds:  # further seeds take the places of the worst-predicted children
            ind = self.space.fill(locked, target, order)
            k = encode(ind)
            if k not in seen:
                seen.add(k)
                extra.append(ind)
        return [seed_ind] + extra + [uniq[i] for i in rank[:max(0, want - len(extra))]]

    def _generation(self, rng, pop, scores, locked, target):
        rank = sorted(range(len(pop)), key=lambda i: (scores[i], i))
        new = [pop[i] for i in rank[:self.elite]]
        new_scores = [scores[i] for i in rank[:self.elite]]
        while len(new) < self.P:
            child = self._child(rng, pop, scores, locked, target)
            new.append(child)
            new_scores.append(self.fitness(child))
        return new, new_scores

    def _screened_generation(self, rng, pop, scores, locked, target, model):
        """Breed ``screen x P`` children, truly evaluate the ``evaluations`` best-predicted
        ones not seen before, keep the best ``P`` of old and new (the best never worsens)."""
        seen = {encode(p) for p in pop}
        kids = []
        for _ in range(self.screen * self.P):
            child = self._child(rng, pop, scores, locked, target)
            k = encode(child)
            if k in seen or k in self.fitness.cache:
                continue
            seen.add(k)
            kids.append(child)
        rank = sorted(range(len(kids)), key=lambda i: (model.predict(kids[i]), i))
        picked = [kids[i] for i in rank[:self.n_eval]]
        got = [self._score(c) for c in picked]
        if picked:
            model.observe(picked, got)
        allp, alls = pop + picked, scores + got
        keep = sorted(range(len(allp)), key=lambda i: (alls[i], i))[:self.P]
        return [allp[i] for i in keep], [alls[i] for i in keep]
