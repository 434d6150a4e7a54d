"""The fast search's cheap fitness model: a per-group sensitivity table and a linear surrogate.

* ``sensitivity_table``: the measured fitness with exactly one group in 4 bits, for every
  group: ``n`` fast forwards, each restarting at the group's layer thanks to the prefix cache
  (quant/fake_quant.py). Measured once; resumable (``known`` values are not measured again,
  ``on_value`` is called after every measurement so the caller can checkpoint).
* ``LinearSurrogate``: predicts the fitness of a flag vector as ``a + sum_i beta_i x_i`` with
  ``beta = table + delta``. The correction ``delta`` is a ridge regression on the residuals of
  the true evaluations seen so far (pulled towards 0, so with no observation the surrogate
  is the table itself). The search ranks many candidates with it and evaluates only the
  most promising ones truly; the search result is always a truly evaluated vector.
"""

from __future__ import annotations

import numpy as np

from .space import SearchSpace


def sensitivity_table(space: SearchSpace, fitness, known: dict | None = None, on_value=None,
                      progress=None) -> np.ndarray:
    """Fitness of each group alone in 4 bits (array of length ``space.n``)."""
    known = dict(known or {})
    out = np.zeros(space.n)
    for i in range(space.n):
        if i in known:
            out[i] = float(known[i])
        else:
            flags = space.empty()
            flags[i] = True
            if space.partial[i]:  # a short group is only valid after its layer's full ones
                g = space.layer_groups[space.layer_of[i]]
                flags[g] = True
                out[i] = fitness(flags) - float(sum(out[j] for j in g if j != i))
                out[i] = max(out[i], 0.0)
            else:
                out[i] = fitness(flags)
            known[i] = float(out[i])
            if on_value is not None:
                on_value(i, float(out[i]))
        if progress is not None:
            progress.update(1)
    return out


def layer_table(space: SearchSpace, fitness, known: dict | None = None, on_value=None,
                progress=None) -> np.ndarray:
    """Fitness of each layer wholly in 4 bits, alone (array of length ``len(space.names)``):
    one forward per layer, resumable like ``sensitivity_table``."""
    known = dict(known or {})
    out = np.zeros(len(space.names))
    for li, g in enumerate(space.layer_groups):
        if li not in known:
            flags = space.empty()
            flags[g] = True
            known[li] = float(fitness(flags))
            if on_value is not None:
                on_value(li, known[li])
        out[li] = float(known[li])
        if progress is not None:
            progress.update(1)
    return out


def layer_ranking(space: SearchSpace, table) -> np.ndarray:
    """Groups ordered layer by layer, the layers by measured fitness per unit of budget
    (lowest first), each layer's groups in their own order: filled up to a ratio's budget,
    this is a layer-wise (HAWQ-style) selection in the search's own fitness."""
    cost = [float(table[li]) / max(float(space.weight[g].sum()), 1e-30)
            for li, g in enumerate(space.layer_groups)]
    layers = sorted(range(len(cost)), key=lambda li: (cost[li], li))
    return np.concatenate([np.asarray(space.layer_groups[li]) for li in layers]).astype(np.int64)


class LinearSurrogate:
    def __init__(self, table, ridge: float = 1.0):
        self.table = np.asarray(table, dtype=np.float64)
        self.ridge = float(ridge)
        self.X: list = []
        self.y: list = []
        self.beta = self.table.copy()
        self.a = 0.0

    def observe(self, flags_list, values) -> None:
        for f, v in zip(flags_list, values):
            self.X.append(np.asarray(f, dtype=np.float64))
            self.y.append(float(v))
        self._fit()

    def _fit(self) -> None:
        X = np.stack(self.X)
        r = np.asarray(self.y) - X @ self.table
        xm, rm = X.mean(axis=0), r.mean()
        Xc, rc = X - xm, r - rm
        # dual form of the ridge solution: m observations, n groups, m usually < n
        k = Xc @ Xc.T + self.ridge * np.eye(len(rc))
        delta = Xc.T @ np.linalg.solve(k, rc)
        self.beta = self.table + delta
        self.a = float(rm - xm @ delta)

    def predict(self, flags) -> float:
        return self.a + float(np.asarray(flags, dtype=np.float64) @ self.beta)
