"""Reuse of a fake-quant forward pass's values at graph cut points, across selections.

A search evaluates many selections that share their first layers on one fixed batch.
``PrefixCache`` keeps the value at each cut point of the graph (a node after which nothing
computed earlier is used), keyed by the 4-bit plans of every GEMM layer before the cut; the
next forward pass restarts from the latest cut whose upstream plans were seen before.
"""

from __future__ import annotations

from collections import OrderedDict

from ..fake_quant import FQTensor


class PrefixCache:
    """Values at the graph's cut points keyed by upstream layer plans, for one fixed input
    batch (``FakeQuantModel.forward(x, plan, prefix_cache=...)``). Bounded in bytes (LRU)."""

    def __init__(self, max_bytes: int = 512 * 2**20):
        self.max_bytes = int(max_bytes)
        self.store: OrderedDict = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self._graph = None

    def _analyse(self, fq):
        nodes = list(fq.gm.graph.nodes)
        index = {n: i for i, n in enumerate(nodes)}
        cuts, gemms = [], []
        worst = -1  # latest use of any non-constant node before the current one
        for i, n in enumerate(nodes):
            kind = n.meta["kind"]
            if kind in ("const", "output"):
                continue
            if kind in ("conv", "linear"):
                gemms.append(n.name)
            if worst <= i and kind not in ("input", "shape") and n.users:
                cuts.append((i, len(gemms)))  # nothing before n is needed after it; its
                # value depends on the plans of the GEMMs up to and including n
            worst = max(worst, max(index[u] for u in n.users) if n.users else i)
        self._graph = (nodes, index, cuts, gemms)

    def run(self, fq, x):
        """``fq``'s graph outputs on ``x`` (the batch this cache is for), restarting from the
        latest cached cut."""
        if self._graph is None:
            self._analyse(fq)
        nodes, index, cuts, gemms = self._graph
        keys = [fq.plan_key(g) for g in gemms]
        cut_keys = {ci: (ci, tuple(keys[:gb])) for ci, gb in cuts}
        env = {}
        for ci, _ in reversed(cuts):
            hit = self.store.get(cut_keys[ci])
            if hit is not None:
                self.store.move_to_end(cut_keys[ci])
                self.hits += 1
                for b in nodes[:ci]:
                    if b.meta["kind"] != "const":
                        env[b] = None
                env[nodes[ci]] = hit
                break
        walk = fq.walker(on_value=lambda n, v: self._keep(cut_keys.get(index[n]), v))
        return walk.run(x, initial_env=env)

    def _keep(self, key, value):
        if key is None or key in self.store or not isinstance(value, FQTensor):
            return
        size = value.codes.numel() * value.codes.element_size()
        self.store[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes and self.store:
            _, old = self.store.popitem(last=False)
            self.bytes -= old.codes.numel() * old.codes.element_size()
