"""Dependency tokens for a tiled op: a double-buffered load -> compute -> vector -> store
pipeline in the decoupled access/execute style (VTA).

For each pair (writer stage W, reader stage R) that share a buffer slot, tile ``i`` of W
signals R when its data is ready, and tile ``i`` of R signals W when the slot is free
again; W waits for that at tile ``i + 2`` (two slots: double buffering). ``close()`` drains
the free tokens nobody will wait for (NOPs), so every token is consumed and the next op
starts from a clean slate. Ops run one after the other: an op's first load waits for the
previous op's last store (its input may be that output).
"""

from __future__ import annotations

from npu_sim import isa

#: (writer, reader) pairs sharing slots, per stage set
_PAIRS = {
    ("load", "compute", "vector", "store"): [("load", "compute"), ("compute", "vector"),
                                             ("vector", "store")],
    ("load", "vector", "store"): [("load", "vector"), ("vector", "store")],
    ("load", "store"): [("load", "store")],
}
#: extra "free" edges without a data token (the reader is reached transitively)
_EXTRA_FREE = {
    ("load", "compute", "vector", "store"): [("load", "vector")],  # tables read by vector
    ("load", "vector", "store"): [],
    ("load", "store"): [],
}
SLOTS = 2


class OpEmitter:
    """Collects the instructions of a whole program, op after op."""

    def __init__(self, program):
        self.program = program
        self.barrier = False  # previous op stored something the next load must wait for

    def pipeline(self, layer_name: str, stages: tuple) -> Pipeline:
        return Pipeline(self, layer_name, stages)

    def emit(self, ins):
        return self.program.emit(ins)


class Pipeline:
    def __init__(self, em: OpEmitter, layer_name: str, stages: tuple):
        if stages not in _PAIRS:
            raise ValueError(f"unsupported stage set {stages}")
        self.em = em
        self.layer = em.program.layer_id(layer_name)
        self.stages = stages
        self.pairs = _PAIRS[stages]
        self.free_pairs = self.pairs + _EXTRA_FREE[stages]
        self.n = 0

    def tile(self, **groups):
        """Emit one tile: ``groups[stage]`` is the list of instructions of that stage."""
        i = self.n
        for st in self.stages:
            ins_list = list(groups.get(st) or [])
            if not ins_list:
                ins_list = [isa.Nop(on=st)]
            waits, signals = [], []
            for w, r in self.pairs:
                if r == st:
                    waits.append(w)  # data ready
                if w == st:
                    signals.append(r)
            for w, r in self.free_pairs:
                if w == st and i >= SLOTS:
                    waits.append(r)  # slot free again
                if r == st:
                    signals.append(w)
            if st == "load" and i == 0 and self.em.barrier:
                waits.append("store")
            first, last = ins_list[0], ins_list[-1]
            first.wait = tuple(dict.fromkeys(tuple(first.wait) + tuple(waits)))
            last.signal = tuple(dict.fromkeys(tuple(last.signal) + tuple(signals)))
            for ins in ins_list:
                ins.layer = self.layer
                self.em.emit(ins)
        self.n += 1

    def close(self, more_ops: bool = True):
        """Drain the free tokens of the last tiles; the last store signals the next op."""
        for w, r in self.free_pairs:
            for _ in range(min(self.n, SLOTS)):
                self.em.emit(isa.Nop(on=w, wait=(r,), layer=self.layer))
        if self.n and more_ops:
            # the last store of this op releases the next op's first load
            self.em.emit(isa.Nop(on="store", signal=("load",), layer=self.layer))
            self.em.barrier = True
        else:
            self.em.barrier = False


def finish(em: OpEmitter) -> None:
    """Consume a barrier token left by the last op, then end the program."""
    if em.barrier:
        em.emit(isa.Nop(on="load", wait=("store",)))
        em.barrier = False
    em.emit(isa.Finish())
