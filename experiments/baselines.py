"""Baselines the FlexiQ selections are compared with.

* uniform INT4 PTQ: every eligible layer entirely in 4 bits with naive (top-4-bit)
  extraction -- ``QuantConfig(extraction="naive")`` at ratio 1;
* naive MSB extraction: FlexiQ's channel selection, but 4-bit channels take the top 4 bits
  of their 8-bit codes -- ``QuantConfig(extraction="naive")`` at every ratio;
* layer-wise mixed precision at the same MAC budget (HAWQ-style, this module): each
  eligible layer's sensitivity is measured as the mean KL divergence of the model's output
  from the 8-bit output when that layer alone runs wholly in 4 bits; layers are ranked by
  sensitivity per MAC and put in 4 bits whole, in that order, while the 4-bit MACs stay
  within ``ratio`` of the eligible MACs (a layer that would overshoot is skipped, later
  smaller ones may still fit). HAWQ-V3 ranks by a Hessian trace and solves an ILP; the
  measured KL and the greedy knapsack keep the same idea (whole layers, sensitivity-driven,
  MAC budget) without second-order gradients.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from numeric.ratio import check_ratio, within_budget
from quant.errors import ConfigError, FlexiQError

from . import io
from .metrics import mean_kl


class LayerwiseSelection:
    """A selection (``numeric.ratio.Max4Source``, as ``quant.Selection``): per-layer orders
    (unchanged) and whole-layer 4-bit sets.

    ``max4_for_ratio(r)`` gives ``{layer: n4}`` with ``n4`` either 0 or the layer's width,
    at any ratio in [0, 1] (the budget rule needs no ladder). ``group_sizes`` is empty: whole
    layers are chosen, so the selection was made without a group size of its own.
    """

    method = "hawq"

    def __init__(self, orders: dict, ranking: list, macs: dict, widths: dict,
                 sensitivity: dict, ratios=()):
        self.orders = {k: [int(i) for i in v] for k, v in orders.items()}
        self.ranking = list(ranking)
        self.macs = {k: int(v) for k, v in macs.items()}
        self.widths = {k: int(v) for k, v in widths.items()}
        self.sensitivity = {k: float(v) for k, v in sensitivity.items()}
        self.ratios = [float(r) for r in ratios]
        self.group_sizes: dict = {}

    def layers_for_ratio(self, r: float) -> list:
        r = check_ratio(r)
        total = sum(self.macs[k] for k in self.ranking)
        chosen, used = [], 0
        for name in self.ranking:
            if within_budget(used + self.macs[name], r, total):
                chosen.append(name)
                used += self.macs[name]
        return chosen

    def max4_for_ratio(self, r: float) -> dict:
        on = set(self.layers_for_ratio(r))
        return {k: (self.widths[k] if k in on else 0) for k in self.widths}

    def to_dict(self) -> dict:
        return {"method": self.method, "orders": self.orders, "ranking": self.ranking,
                "macs": self.macs, "widths": self.widths, "sensitivity": self.sensitivity,
                "ratios": self.ratios}

    def save(self, path) -> None:
        io.write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path) -> LayerwiseSelection:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("method") != cls.method:
            raise ConfigError(f"{path} is not a layer-wise (hawq) selection")
        return cls(d["orders"], d["ranking"], d["macs"], d["widths"], d["sensitivity"],
                   d.get("ratios", ()))


def _logits(qmodel, x: torch.Tensor, batch: int) -> np.ndarray:
    outs = [qmodel(x[i:i + batch]).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def layer_sensitivity(qmodel, x: torch.Tensor, *, batch: int = 64, exact: bool = False,
                      progress: bool = False) -> dict:
    """Mean KL from the 8-bit output when each eligible layer alone runs wholly in 4 bits.

    By default measured on the fast fake-quant path (quant/fake_quant.py, the one the FlexiQ
    searches score with); ``exact=True`` uses the integer runtime (slower).
    """
    from tqdm.auto import tqdm

    eligible = [k for k, L in qmodel.layers.items() if L.eligible]
    # the quantizer's own channel order (its 4-bit groups), not an attached selection's
    base = {k: (np.asarray(L.own_order), 0) for k, L in qmodel.layers.items()}
    if exact:
        saved = dict(qmodel.max4)
        saved_orders = {k: L.order for k, L in qmodel.layers.items()}
        for k, L in qmodel.layers.items():
            L.order = base[k][0]

        def run(plan):
            qmodel.set_max4({k: n4 for k, (_, n4) in plan.items()})
            return _logits(qmodel, x, batch)
    else:
        from quant.fake_quant import FakeQuantModel

        fq = FakeQuantModel(qmodel)

        def run(plan):
            with torch.no_grad():
                return np.concatenate([_first(fq(x[i:i + batch], plan=plan)).double().numpy()
                                       for i in range(0, len(x), batch)])
    try:
        try:
            ref = run(base)
        except FlexiQError:
            if exact:
                raise
            # the fake-quant path lacks an op of this model: measure on the integer runtime
            return layer_sensitivity(qmodel, x, batch=batch, exact=True, progress=progress)
        out = {}
        for name in tqdm(eligible, desc="layer sensitivity", disable=not progress, leave=False):
            plan = dict(base)
            plan[name] = (base[name][0], qmodel.layers[name].in_channels)
            out[name] = mean_kl(run(plan), ref)
    finally:
        if exact:
            for k, o in saved_orders.items():
                qmodel.layers[k].order = o
            qmodel.set_max4(saved)
    return out


def hawq_selection(qmodel, calib_x: torch.Tensor, ratios=(), *, n_images: int = 32,
                   batch: int = 64, progress: bool = False) -> LayerwiseSelection:
    """Rank eligible layers by measured sensitivity per MAC (lowest first)."""
    x = calib_x[:n_images]
    sens = layer_sensitivity(qmodel, x, batch=batch, progress=progress)
    layers = {k: L for k, L in qmodel.layers.items() if L.eligible}
    ranking = sorted(layers, key=lambda k: (sens[k] / max(layers[k].macs, 1), k))
    orders = {k: np.asarray(L.own_order).tolist() for k, L in qmodel.layers.items()
              if L.order is not None}
    return LayerwiseSelection(orders, ranking, {k: L.macs for k, L in layers.items()},
                              {k: L.in_channels for k, L in layers.items()}, sens, ratios)
