"""The search space of channel selection: fixed channel groups per layer and a 4-bit budget.

Every eligible GEMM layer's input channels are cut into groups of the layer's group size
``G``: consecutive slices of a *base order* (the range priority of quant/priority.py, or a
random permutation for the random baseline). A selection at one ratio is one flag per
group ("this group runs in 4 bits"), stored as a flat boolean vector over all groups of
all layers.

Rules that keep every flag vector a valid ``max4`` table:

* a layer whose channel count is not a multiple of ``G`` has one short ("partial") group,
  the last slice of its base order; it may be on only when all the layer's full groups are
  on, so that it always comes last among the 4-bit channels and ``max4`` stays a multiple
  of ``G`` (or all channels);
* the budget is a fraction of the eligible layers' MACs (default: cycles follow MACs) or of
  their channels; a group weighs its layer's MACs times its share of the channels (or its
  channel count). ``fill`` makes the 4-bit weight the largest it can be without exceeding
  the target, so it ends within one group of the target;
* nesting: a set searched at a higher ratio is constrained to contain (``locked``) the set
  chosen at the previous ratio.
"""

from __future__ import annotations

import numpy as np

from numeric.ratio import RATIO_TOL

from ..errors import ConfigError

BUDGETS = ("macs", "channels")


class SearchSpace:
    def __init__(self, qmodel, base_orders: dict | None = None, budget: str = "macs"):
        if budget not in BUDGETS:
            raise ConfigError(f"budget must be one of {BUDGETS}, got {budget!r}")
        self.budget = budget
        self.names: list[str] = []
        self.base_orders: dict = {}
        self.group_sizes: dict = {}
        chans, layer_of, weight, partial, sizes = [], [], [], [], []
        self.layer_groups: list[np.ndarray] = []  # per layer: its flat group indices
        for name, L in qmodel.layers.items():
            if not L.selectable:
                continue
            order = np.asarray(base_orders[name] if base_orders and name in base_orders
                               else L.own_order, dtype=np.int64)  # not an attached selection's
            if sorted(order.tolist()) != list(range(L.in_channels)):
                raise ConfigError(f"base order of layer '{name}' is not a permutation")
            li = len(self.names)
            self.names.append(name)
            self.base_orders[name] = order
            self.group_sizes[name] = L.group_size
            first = len(chans)
            for a in range(0, L.in_channels, L.group_size):
                ch = order[a:a + L.group_size]
                chans.append(ch)
                layer_of.append(li)
                sizes.append(len(ch))
                partial.append(len(ch) < L.group_size)
                w = L.macs * len(ch) / L.in_channels if budget == "macs" else float(len(ch))
                weight.append(float(w))
            self.layer_groups.append(np.arange(first, len(chans)))
        if not self.names:
            raise ConfigError("the model has no eligible GEMM layer: nothing to select")
        self.channels = chans
        self.layer_of = np.asarray(layer_of, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.weight = np.asarray(weight, dtype=np.float64)
        self.partial = np.asarray(partial, dtype=bool)
        self.total = float(self.weight.sum())
        self.n = len(chans)
        self._eps = RATIO_TOL * self.total  # float slack of a MAC budget

    # ---- budget ------------------------------------------------------------------------
    def target(self, ratio: float) -> float:
        return float(ratio) * self.total

    def achieved(self, flags) -> float:
        return float(self.weight[np.asarray(flags, dtype=bool)].sum())

    def share(self, flags) -> float:
        return self.achieved(flags) / self.total

    def empty(self) -> np.ndarray:
        return np.zeros(self.n, dtype=bool)

    # ---- validity ----------------------------------------------------------------------
    def _full_on(self, flags, li) -> bool:
        g = self.layer_groups[li]
        return bool(np.all(flags[g[~self.partial[g]]]))

    def addable(self, flags, gi) -> bool:
        if flags[gi]:
            return False
        return not self.partial[gi] or self._full_on(flags, self.layer_of[gi])

    def removable(self, flags, gi, locked) -> bool:
        if not flags[gi] or locked[gi]:
            return False
        if self.partial[gi]:
            return True
        g = self.layer_groups[self.layer_of[gi]]
        return not np.any(flags[g[self.partial[g]]])  # a partial group on pins the full ones

    def valid(self, flags, locked=None) -> bool:
        flags = np.asarray(flags, dtype=bool)
        for li, g in enumerate(self.layer_groups):
            if np.any(flags[g[self.partial[g]]]) and not self._full_on(flags, li):
                return False
        return locked is None or bool(np.all(flags[np.asarray(locked, dtype=bool)]))

    # ---- budget repair -----------------------------------------------------------------
    def fill(self, flags, target, prefer) -> np.ndarray:
        """Turn groups on in the order ``prefer`` while they fit under ``target``; repeats
        the pass until nothing changes (a partial group becomes addable late)."""
        flags = np.array(flags, dtype=bool)
        room = target + self._eps - self.achieved(flags)
        changed = True
        while changed:
            changed = False
            for gi in prefer:
                if self.weight[gi] <= room and self.addable(flags, gi):
                    flags[gi] = True
                    room -= self.weight[gi]
                    changed = True
        return flags

    def trim(self, flags, target, locked, prefer_remove) -> np.ndarray:
        """Turn unlocked groups off in the order ``prefer_remove`` until within ``target``."""
        flags = np.array(flags, dtype=bool)
        excess = self.achieved(flags) - target - self._eps
        changed = True
        while excess > 0 and changed:
            changed = False
            for gi in prefer_remove:
                if excess <= 0:
                    break
                if self.removable(flags, gi, locked):
                    flags[gi] = False
                    excess -= self.weight[gi]
                    changed = True
        return flags

    def repair(self, flags, target, locked, rng) -> np.ndarray:
        """Random trim then random fill: a valid, maximal flag vector under ``target``."""
        flags = np.array(flags, dtype=bool) | np.asarray(locked, dtype=bool)
        for li, g in enumerate(self.layer_groups):  # a partial group needs its full groups
            if not self._full_on(flags, li):
                flags[g[self.partial[g]]] = False
        flags = self.trim(flags, target, locked, rng.permutation(self.n))
        return self.fill(flags, target, rng.permutation(self.n))

    # ---- reading a selection out -------------------------------------------------------
    def layer_plan(self, flags) -> dict:
        """{layer: (order, n4)} for one flag vector: 4-bit groups first (base order)."""
        out = {}
        flags = np.asarray(flags, dtype=bool)
        for li, name in enumerate(self.names):
            g = self.layer_groups[li]
            on = [self.channels[i] for i in g if flags[i]]
            off = [self.channels[i] for i in g if not flags[i]]
            order = np.concatenate(on + off)
            out[name] = (order, int(sum(len(c) for c in on)))
        return out

    def max4(self, flags) -> dict:
        flags = np.asarray(flags, dtype=bool)
        return {name: int(self.sizes[g][flags[g]].sum()) for name, g in zip(self.names, self.layer_groups)}

    def nested_orders(self, ladder) -> dict:
        """One priority order per layer for a list of nested flag vectors (ascending): groups
        in the order they turned on (partial last), then the groups never on."""
        ladder = [np.asarray(f, dtype=bool) for f in ladder]
        first_on = np.full(self.n, len(ladder), dtype=np.int64)
        for i in range(len(ladder) - 1, -1, -1):
            first_on[ladder[i]] = i
        out = {}
        for name, g in zip(self.names, self.layer_groups):
            ranked = sorted(g.tolist(), key=lambda i: (first_on[i], bool(self.partial[i]), i))
            out[name] = np.concatenate([self.channels[i] for i in ranked])
        return out

    def check_nested(self, ladder) -> None:
        for a, b in zip(ladder, ladder[1:]):
            if np.any(np.asarray(a) & ~np.asarray(b)):
                raise AssertionError("selection ladder is not nested")


def encode(flags) -> str:
    """Compact text form of a flag vector (hex of the packed bits), for files and caches."""
    return np.packbits(np.asarray(flags, dtype=bool)).tobytes().hex()


def decode(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:n].astype(bool)
