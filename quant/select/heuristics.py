"""Ranking methods: random, range priority, greedy. Each ranks every channel group of every
eligible layer once; the nested ladder is then built by filling the budget in that order,
ratio by ratio, starting from the previous ratio's set (so lower sets are always subsets).

* random: a random channel order per layer (random groups) and a random group ranking.
* range:  the range priority of quant/priority.py within a layer; across layers, groups are
  ranked by an analytic estimate of the error they add, relative to the layer's signal
  (noise-to-signal ratio of the accumulator), per unit of budget. No forward pass.
* greedy: the same groups, added one at a time: at every step the group whose addition
  raises the *measured* fitness (soft-label distance, quant/select/fitness.py) least per unit
  of budget, given the groups already chosen, until the target is full; then the next ratio
  continues from there. About (groups x steps) fast forwards, most of them short thanks to
  the prefix cache: the "exhaustive" variant, O(groups^2) forwards.
* fast greedy (the default, quant/select/api.py): the same ranking rule applied once to a
  measured sensitivity table (quant/select/surrogate.py: the fitness of each group alone,
  one forward per group), so O(groups) forwards; ``greedy_scores`` is that ranking.
"""

from __future__ import annotations

import numpy as np

from ..extraction import shift_for_range
from .space import SearchSpace


def _noise(e):
    e = np.asarray(e, dtype=np.float64)
    return np.where(e > 0, 4.0**e / 12.0, 0.0)


def group_nsr(layer, channels, extraction: str) -> float:
    """Estimated noise-to-signal ratio a group of input channels adds to a layer's accumulator
    when lowered to 4 bits with one activation shift and per-output-channel weight shifts."""
    w = np.asarray(layer.w_codes, dtype=np.float64)
    w = w.reshape(w.shape[0], w.shape[1], -1)  # [N, C, taps]
    xr = layer.x_range
    msq = np.asarray(layer.x_mean_sq, dtype=np.float64)
    signal = float((msq[None, :, None] * w**2).sum()) or 1.0
    wg = w[:, channels]
    ex = shift_for_range(int(xr[0, channels].min()), int(xr[1, channels].max()), layer.x_signed, extraction)
    ew = shift_for_range(wg.min(axis=(1, 2)), wg.max(axis=(1, 2)), True, extraction)  # [N]
    act = float(_noise(ex)) * float((wg**2).sum())
    wt = float((_noise(ew) * wg.shape[2]).sum()) * float(msq[channels].sum())
    return (act + wt) / signal


def range_scores(qmodel, space: SearchSpace) -> np.ndarray:
    ext = qmodel.config.extraction
    nsr = np.array([group_nsr(qmodel.layers[space.names[space.layer_of[i]]], space.channels[i], ext)
                    for i in range(space.n)])
    return nsr / space.weight


def greedy_scores(space: SearchSpace, fitness, progress=None) -> np.ndarray:
    sens = np.zeros(space.n)
    for i in range(space.n):
        flags = space.empty()
        flags[i] = True
        sens[i] = fitness(flags)
        if progress is not None:
            progress.update(1)
    return sens / space.weight


def greedy_ladder(space: SearchSpace, fitness, ratios, progress=None, state=None, on_step=None) -> list:
    """Nested flag vectors for ascending ratios by marginal measured error per unit budget
    (exhaustive: every candidate group measured at every step).

    ``state`` (from ``on_step``) resumes: {"ladder": finished flag vectors, "flags": the
    current set}. ``on_step(state)`` is called after every added group and finished ratio."""
    flags = space.empty() if not state else np.asarray(state["flags"], dtype=bool)
    ladder = [] if not state else [np.asarray(f, dtype=bool) for f in state["ladder"]]
    if progress is not None and state:
        progress.update(int(flags.sum()))
    for r in ratios[len(ladder):]:
        target = space.target(r)
        if target >= space.total - space._eps:
            flags = space.fill(flags, target, np.arange(space.n))
        while True:
            room = target + space._eps - space.achieved(flags)
            cands = [i for i in range(space.n) if space.weight[i] <= room and space.addable(flags, i)]
            if not cands:
                break
            base = fitness(flags)
            best, best_key = None, None
            for i in cands:
                trial = flags.copy()
                trial[i] = True
                key = ((fitness(trial) - base) / space.weight[i], i)
                if best_key is None or key < best_key:
                    best, best_key = i, key
            flags = flags.copy()
            flags[best] = True
            if progress is not None:
                progress.update(1)
            if on_step is not None:
                on_step({"ladder": ladder, "flags": flags})
        ladder.append(flags.copy())
        if on_step is not None:
            on_step({"ladder": ladder, "flags": flags})
    return ladder


def ranking(scores) -> np.ndarray:
    """Group indices, lowest score first (stable on ties)."""
    return np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")


def nested_ladder(space: SearchSpace, ratios, prefer) -> list:
    """Flag vectors for ascending ratios, each filled from the previous one."""
    ladder, prev = [], space.empty()
    for r in ratios:
        prev = space.fill(prev, space.target(r), prefer)
        ladder.append(prev)
    return ladder


def random_base_orders(qmodel, rng) -> dict:
    return {name: rng.permutation(L.in_channels) for name, L in qmodel.layers.items()
            if L.selectable}
