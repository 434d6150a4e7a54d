"""The quantized-model runtime: the integer backend of the graph walk, and ``QuantizedModel``.

Every tensor flowing between nodes is a ``QTensor`` (int64 codes, a scale, signedness).
``GraphWalk`` (quant/graph_walk.py) runs the prepared fx graph; ``IntBackend`` here supplies
the exact arithmetic: GEMMs run the mixed 4/8-bit math (quant/mixed_conv.py,
quant/mixed_gemm.py), the other ops their integer semantics (quant/int_ops.py) or the
shared float ops (quant/float_ops.py). ``set_ratio`` / ``set_max4`` change only the
per-layer 4-bit channel counts; no weight is touched.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from numeric.ratio import check_ratio, max4_for_ratio

from . import float_ops, int_ops
from .config import QuantConfig
from .errors import ConfigError, RatioError, RatioWarning, SelectionFileError
from .graph_walk import GraphWalk, map_values
from .mixed_conv import exact_conv2d, mixed_conv2d
from .mixed_gemm import exact_matmul, mixed_linear
from .rounding import quantize_float, requantize


@dataclass
class QTensor:
    codes: torch.Tensor  # int64
    scale: float
    signed: bool

    def dequantize(self) -> torch.Tensor:
        return self.codes.double() * self.scale

    @property
    def np(self) -> np.ndarray:
        return self.codes.numpy()


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


class IntBackend:
    """The exact integer arithmetic of every op (``GraphWalk`` supplies what the ops mean):
    int64 code tensors, numpy int64 / float64 kernels."""

    value_type = QTensor
    label = "integer"

    def __init__(self, config: QuantConfig):
        self.config = config

    def quantize_input(self, x, q):
        return _t(quantize_float(x.detach().numpy(), q.scale, q.signed))

    def const_codes(self, c, scale, signed):
        return _t(quantize_float(torch.as_tensor(c).detach().double().numpy(), scale, signed))

    def const_value(self, v):
        sc, sg = int_ops.act_scale(float(v.min()), float(v.max()))
        return QTensor(self.const_codes(v, sc, sg), sc, sg)

    def maxpool(self, codes, p):
        y = F.max_pool2d(codes.double(), p["kernel"], p["stride"], p["padding"], p["dilation"],
                         ceil_mode=p["ceil_mode"])
        return y.round().long()

    def clamp(self, codes, lo, hi):
        return codes.clamp(min=lo) if hi is None else codes.clamp(lo, hi)

    def gemm(self, n, L, x: QTensor):
        cfg = self.config
        xc = x.np
        if L.kind == "conv":
            if L.groups == 1:
                acc = mixed_conv2d(xc, L.w_codes, L.max4, order=L.order, group_size=L.group_size,
                                   x_signed=x.signed, extraction=cfg.extraction,
                                   x_range=None if cfg.dynamic else L.x_range, dynamic=cfg.dynamic,
                                   weight_shift=cfg.weight_shift, stride=L.stride,
                                   padding=L.padding, dilation=L.dilation)
            else:
                acc = exact_conv2d(xc, L.w_codes, L.stride, L.padding, L.dilation, L.groups)
            acc = acc + L.bias.reshape(1, -1, 1, 1)
            int_ops.check_int32(acc, L.name)
            return _t(requantize(acc, L.m.reshape(1, -1, 1, 1), L.s.reshape(1, -1, 1, 1),
                                 L.lo, L.hi))
        lead = xc.shape[:-1]
        x3 = xc.reshape(xc.shape[0] if xc.ndim > 1 else 1, -1, xc.shape[-1])
        o = L.order
        acc = mixed_linear(x3[:, :, o], L.w_codes[:, o], L.max4, group_size=L.group_size,
                           x_signed=x.signed, extraction=cfg.extraction,
                           x_range=None if cfg.dynamic else L.x_range[:, o],
                           dynamic=cfg.dynamic, weight_shift=cfg.weight_shift)
        acc = acc.reshape(*lead, -1) + L.bias
        int_ops.check_int32(acc, L.name)
        return _t(requantize(acc, L.m, L.s, L.lo, L.hi))

    def add(self, a, b, ma, mb, s, q):
        return _t(int_ops.add(a.numpy(), b.numpy(), ma, mb, s, q.lo, q.hi))

    def matmul(self, name, a, b, q):
        acc = exact_matmul(a.numpy(), b.numpy())
        int_ops.check_int32(acc, name)
        return _t(requantize(acc, q.consts["m"], q.consts["s"], q.lo, q.hi))

    def rescale(self, codes, m, s, q):
        return _t(int_ops.rescale(codes.numpy(), m, s, q.lo, q.hi))

    def window_sum(self, codes, p):
        sums = F.avg_pool2d(codes.double(), p["kernel"], p["stride"], p["padding"],
                            ceil_mode=p["ceil_mode"], count_include_pad=True, divisor_override=1)
        return torch.from_numpy(np.rint(sums.numpy()).astype(np.int64))

    def sum_requant(self, sums, m, s, q):
        return _t(int_ops.sum_requant(sums.numpy(), m, s, q.lo, q.hi))

    def softmax(self, x: QTensor, q):
        return _t(float_ops.softmax(x.np, x.scale, q.scale, q.signed))

    def gelu(self, x: QTensor, q):
        return _t(float_ops.gelu(x.np, x.scale, q.scale, q.signed))

    def layernorm(self, n, x: QTensor, q):
        c = q.consts
        return _t(float_ops.layernorm(x.np, x.scale, c["gamma"], c["beta"], c["eps"], q.scale,
                                      q.signed))


class QuantizedModel:
    """A model quantized to 8 bits whose GEMM layers can run channels in 4 bits.

    ``forward(x)`` takes float NCHW input and returns dequantized float outputs;
    ``run(x)`` returns the integer ``QTensor``. ``set_ratio(r)`` picks each layer's 4-bit
    count from the selection (if one is attached) or the uniform per-layer rule.

    Reading the captured graph (the compiler does): ``graph`` is the prepared fx graph, whose
    nodes carry ``meta["kind"]`` (the op kind, quant/capture.py) and ``meta["params"]`` (its
    parsed arguments, quant/op_params.py); ``layers`` maps GEMM node names to ``GemmLayer``,
    ``node_q`` requantizing node names to ``NodeQ``; ``submodule(target)`` / ``module(node)``
    give the modules the graph calls; ``run(x, on_value=fn)`` calls ``fn(node, value)`` with
    every node's value (a ``QTensor``, a float constant or a Python value).
    """

    def __init__(self, gm, layers, node_q, config: QuantConfig, shapes):
        self.gm = gm
        self.layers = layers
        self.node_q = node_q
        self.config = config
        self.shapes = shapes
        self.selection = None
        self.ratio = 0.0
        self._mods = dict(gm.named_modules())

    @property
    def graph(self) -> fx.Graph:
        """The captured fx graph (BatchNorm folded, activations fused, kinds and params set)."""
        return self.gm.graph

    def submodule(self, target: str) -> nn.Module:
        """The module at ``target`` (a ``call_module`` node's target) of the captured graph."""
        if target not in self._mods:
            raise ConfigError(f"the quantized model has no submodule '{target}'")
        return self._mods[target]

    def module(self, n: fx.Node):
        """The module a ``call_module`` node calls, None for any other node."""
        return self._mods.get(n.target) if n.op == "call_module" else None

    # ---- ratio control -------------------------------------------------------------
    @property
    def max4(self) -> dict:
        return {k: L.max4 for k, L in self.layers.items()}

    def set_max4(self, table: dict) -> None:
        """Set per-layer 4-bit channel counts (names of GEMM layers); others unchanged."""
        for name, n4 in table.items():
            if name not in self.layers:
                raise ConfigError(f"set_max4: no GEMM layer named '{name}' (have {list(self.layers)[:5]}...)")
            self.layers[name].max4 = self.layers[name].check_max4(n4)

    def max4_for_ratio(self, r: float) -> dict:
        """{layer: n4} at ratio ``r``: the attached selection's level (``RatioError`` for a
        ratio off its ladder), else the uniform per-layer rule (a ``RatioWarning`` when that
        gives no layer a 4-bit group at 0 < r < 1)."""
        r = check_ratio(r)
        if self.selection is not None:
            table = self.selection.max4_for_ratio(r)
            if table is None:
                ladder = ", ".join(f"{float(x):g}" for x in sorted(self.selection.ratios))
                raise RatioError(f"ratio {r:g} is not on the attached selection's ladder "
                                 f"({ladder}); choose one of those or select again with "
                                 f"ratios that include {r:g}")
            return table
        table = {k: (max4_for_ratio(L.in_channels, L.group_size, r) if L.eligible else 0)
                 for k, L in self.layers.items()}
        if 0.0 < r < 1.0 and not any(table.values()) and any(
                L.eligible for L in self.layers.values()):
            warnings.warn(f"ratio {r:g} runs nothing in 4 bits: no selection is attached and the "
                          "uniform rule (whole groups per layer) gives no layer a 4-bit group; "
                          "attach one (quant.select(qm, calib, method='range'), "
                          "qm.attach_selection(sel))", RatioWarning, stacklevel=3)
        return table

    def set_ratio(self, r: float) -> None:
        """Switch the 4-bit ratio: changes only the per-layer max4 counts."""
        self.set_max4(self.max4_for_ratio(r))
        self.ratio = float(r)

    def attach_selection(self, selection) -> None:
        """Use a selection's priority orders and per-ratio 4-bit counts."""
        for name, order in selection.orders.items():
            if name not in self.layers:
                raise ConfigError(f"selection names layer '{name}', which this model lacks")
            L = self.layers[name]
            g = selection.group_sizes.get(name)  # numeric.ratio.Max4Source
            if g is not None and int(g) != L.group_size:
                raise SelectionFileError(f"selection was made with group size {g} for layer "
                                         f"'{name}', this model uses {L.group_size}")
            order = np.asarray(order, dtype=np.int64)
            if sorted(order.tolist()) != list(range(L.in_channels)):
                raise ConfigError(f"selection order for '{name}' is not a permutation of {L.in_channels} channels")
            L.order = order
        self.selection = selection
        self.set_ratio(self.ratio)

    def four_bit_mac_share(self) -> float:
        """Fraction of all GEMM MACs that run in 4 bits at the current max4 settings."""
        tot = sum(L.macs for L in self.layers.values())
        four = sum(L.macs * L.max4 / L.in_channels for L in self.layers.values())
        return four / tot if tot else 0.0

    # ---- execution -----------------------------------------------------------------
    def run(self, x, *, on_value=None) -> QTensor:
        """Integer outputs for float input ``x``; ``on_value(node, value)``, if given, is
        called with every node's value in graph order."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        with torch.no_grad():
            return GraphWalk(self.gm, self, IntBackend(self.config), on_value).run(x.float())

    def forward(self, x) -> torch.Tensor:
        out = self.run(x)
        return map_values(out, lambda q: q.dequantize().float() if isinstance(q, QTensor) else q)

    __call__ = forward

    def float_forward(self, x) -> torch.Tensor:
        """The float model (BatchNorm folded), for FP32 references."""
        with torch.no_grad():
            return self.gm(torch.as_tensor(x).float())

    def summary(self) -> str:
        lines = [f"{'layer':<40} {'kind':<6} {'C':>5} {'N':>5} {'G':>3} {'max4':>5}  8-bit because"]
        for L in self.layers.values():
            lines.append(f"{L.name:<40} {L.kind:<6} {L.in_channels:>5} {L.out_channels:>5} "
                         f"{L.group_size:>3} {L.max4:>5}  {L.why_8bit}")
        return "\n".join(lines)
