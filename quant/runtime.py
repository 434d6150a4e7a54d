"""The quantized-model runtime: an integer interpreter over the prepared fx graph.

Every tensor flowing between nodes is a ``QTensor`` (int64 codes, a scale, signedness).
GEMMs run the exact mixed 4/8-bit math (quant/mixed_conv.py, quant/mixed_gemm.py), the
other ops their integer semantics (quant/int_ops.py) or the shared float ops
(quant/float_ops.py). ``set_ratio`` / ``set_max4`` change only the per-layer 4-bit
channel counts; no weight is touched.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F

from numeric.checks import pair as _pair
from numeric.ratio import check_ratio, max4_for_ratio

from . import float_ops, int_ops
from .capture import source_of
from .config import QuantConfig
from .errors import (
    ConfigError,
    FlexiQError,
    RatioError,
    RatioWarning,
    SelectionFileError,
    UnsupportedOpError,
)
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


#: What an op raises when the model uses it in a way this runtime does not support. Other
#: exceptions (timeouts, interrupts, memory, I/O) pass through unchanged.
OP_FAILURES = (TypeError, ValueError, NotImplementedError, RuntimeError, IndexError,
               AttributeError, KeyError)


def _map(obj, fn):
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: _map(v, fn) for k, v in obj.items()}
    return fn(obj)


def first_of(args, cls):
    """The first ``cls`` instance among ``args`` (searching nested lists/tuples)."""
    for a in args:
        if isinstance(a, cls):
            return a
        if isinstance(a, (list, tuple)):
            q = first_of(a, cls)
            if q is not None:
                return q
    return None


def run_on_codes(interp: fx.Interpreter, n, args, kwargs, cls):
    """Run node ``n`` (an op that only moves codes: views, reshapes, zero padding) through
    ``fx.Interpreter`` on the codes inside ``cls`` values (``QTensor`` or the fake-quant
    twin: anything with ``codes``, ``scale``, ``signed``); tensor outputs get the first
    input's scale and signedness."""
    q = first_of(args, cls)
    unwrap = lambda a: a.codes if isinstance(a, cls) else a  # noqa: E731
    out = getattr(fx.Interpreter, n.op)(interp, n.target, _map(args, unwrap),
                                         _map(kwargs, unwrap))
    wrap = lambda t: cls(t, q.scale, q.signed) if isinstance(t, torch.Tensor) and q else t  # noqa: E731
    return _map(out, wrap)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


class _IntInterpreter(fx.Interpreter):
    def __init__(self, qm: QuantizedModel):
        super().__init__(qm.gm)
        self.qm = qm

    def run_node(self, n):
        kind = n.meta["kind"]
        if kind in ("const", "output"):
            return super().run_node(n)
        if kind == "input":
            x = super().run_node(n)
            q = self.qm.node_q[n.name]
            return QTensor(_t(quantize_float(x.detach().numpy(), q.scale, q.signed)), q.scale, q.signed)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        try:
            return getattr(self, "op_" + kind)(n, args, kwargs)
        except FlexiQError:
            raise
        except OP_FAILURES as exc:  # the op's arguments are ones it cannot take
            raise UnsupportedOpError(
                f"integer execution failed at node '{n.name}' ({kind}, {source_of(n)}): {exc}") from exc

    # --- ops that only move codes -------------------------------------------------
    def _passthrough(self, n, args, kwargs):
        return run_on_codes(self, n, args, kwargs, QTensor)

    op_layout = _passthrough
    op_shape = _passthrough
    op_pad = _passthrough  # zero padding: code 0 is the value 0 (no zero points)
    op_fused = lambda self, n, a, k: a[0]  # noqa: E731  (activation folded into its producer)

    def op_maxpool(self, n, args, kwargs):
        x = args[0]
        mod = self.qm.module(n)
        if mod is not None:
            y = F.max_pool2d(x.codes.double(), mod.kernel_size, mod.stride, mod.padding,
                             mod.dilation, ceil_mode=mod.ceil_mode)
        else:
            y = F.max_pool2d(x.codes.double(), *args[1:], **kwargs)
        return QTensor(y.round().long(), x.scale, x.signed)

    def op_relu(self, n, args, kwargs):
        x = args[0]
        return QTensor(x.codes.clamp(min=0), x.scale, False)

    def op_relu6(self, n, args, kwargs):
        x = args[0]
        hi = int(round(6.0 / x.scale))
        return QTensor(x.codes.clamp(0, hi), x.scale, False)

    op_hardtanh = op_relu6

    # --- GEMMs ----------------------------------------------------------------------
    def op_conv(self, n, args, kwargs):
        L = self.qm.layers[n.name]
        x = args[0]
        cfg = self.qm.config
        xc = x.np
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
        y = requantize(acc, L.m.reshape(1, -1, 1, 1), L.s.reshape(1, -1, 1, 1), L.lo, L.hi)
        return QTensor(_t(y), L.out_scale, L.out_signed)

    def op_linear(self, n, args, kwargs):
        L = self.qm.layers[n.name]
        x = args[0]
        cfg = self.qm.config
        xc = x.np
        lead = xc.shape[:-1]
        x3 = xc.reshape(xc.shape[0] if xc.ndim > 1 else 1, -1, xc.shape[-1])
        o = L.order
        acc = mixed_linear(x3[:, :, o], L.w_codes[:, o], L.max4, group_size=L.group_size,
                           x_signed=x.signed, extraction=cfg.extraction,
                           x_range=None if cfg.dynamic else L.x_range[:, o],
                           dynamic=cfg.dynamic, weight_shift=cfg.weight_shift)
        acc = acc.reshape(*lead, -1) + L.bias
        int_ops.check_int32(acc, L.name)
        y = requantize(acc, L.m, L.s, L.lo, L.hi)
        return QTensor(_t(y), L.out_scale, L.out_signed)

    # --- requantizing elementwise / reduction ops ------------------------------------
    def _const_codes(self, c, scale, signed):
        return _t(quantize_float(torch.as_tensor(c).detach().double().numpy(), scale, signed))

    def op_add(self, n, args, kwargs, sign=1):
        q = self.qm.node_q[n.name]
        a, b = args[0], args[1]
        ops = []
        for v in (a, b):
            if isinstance(v, QTensor):
                ops.append(v)
            elif isinstance(v, torch.Tensor):
                sc, sg = int_ops.act_scale(float(v.min()), float(v.max()))
                ops.append(QTensor(self._const_codes(v, sc, sg), sc, sg))
            else:
                raise UnsupportedOpError(f"add of a Python number at node '{n.name}' ({source_of(n)})")
        ma, mb, s = int_ops.two_input_multipliers(ops[0].scale, ops[1].scale, q.scale)
        y = int_ops.add(ops[0].np, ops[1].np, ma, sign * mb, s, q.lo, q.hi)
        return QTensor(_t(y), q.scale, q.signed)

    def op_sub(self, n, args, kwargs):
        return self.op_add(n, args, kwargs, sign=-1)

    def op_mul(self, n, args, kwargs):
        a, b = args[0], args[1]
        if isinstance(b, QTensor) and not isinstance(a, QTensor):
            a, b = b, a
        if isinstance(a, QTensor) and isinstance(b, (int, float)) and b > 0:
            return QTensor(a.codes, a.scale * float(b), a.signed)  # a pure scale change
        raise UnsupportedOpError(
            f"multiply at node '{n.name}' ({source_of(n)}): only a product with a positive "
            "Python number is supported")

    def op_matmul(self, n, args, kwargs):
        a, b = args[0], args[1]
        if not (isinstance(a, QTensor) and isinstance(b, QTensor)):
            raise UnsupportedOpError(
                f"matmul at node '{n.name}' ({source_of(n)}) needs two activations; "
                "a matmul with a parameter must be an nn.Linear")
        q = self.qm.node_q[n.name]
        acc = exact_matmul(a.np, b.np)
        int_ops.check_int32(acc, n.name)
        y = requantize(acc, q.consts["m"], q.consts["s"], q.lo, q.hi)
        return QTensor(_t(y), q.scale, q.signed)

    def op_cat(self, n, args, kwargs):
        q = self.qm.node_q[n.name]
        parts = []
        for v in args[0]:
            if isinstance(v, QTensor):
                m, s = int_ops.quantize_multiplier(v.scale / q.scale)
                parts.append(_t(int_ops.rescale(v.np, m, s, q.lo, q.hi)))
            else:
                parts.append(self._const_codes(v, q.scale, q.signed))
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        return QTensor(torch.cat(parts, dim=dim), q.scale, q.signed)

    def _reduce_mean(self, n, x: QTensor, dims):
        q = self.qm.node_q[n.name]
        sums = x.codes.sum(dim=dims, keepdim=q.consts.get("keepdim", False))
        count = int(np.prod([x.codes.shape[d] for d in dims]))
        m, s = int_ops.quantize_multiplier(x.scale / (count * q.scale))
        y = int_ops.sum_requant(sums.numpy(), m, s, q.lo, q.hi)
        return QTensor(_t(y), q.scale, q.signed)

    def op_avgpool(self, n, args, kwargs):
        x = args[0]
        mod = self.qm.module(n)
        out_size = getattr(mod, "output_size", None) if mod is not None else (args[1] if len(args) > 1 else None)
        if mod is None or out_size is not None:
            if _pair(out_size) != (1, 1):
                raise UnsupportedOpError(
                    f"adaptive average pool to {out_size} at node '{n.name}' ({source_of(n)}): "
                    "only global pooling (output 1x1) is supported")
            self.qm.node_q[n.name].consts["keepdim"] = True
            return self._reduce_mean(n, x, (2, 3))
        q = self.qm.node_q[n.name]
        k = _pair(mod.kernel_size)
        sums = F.avg_pool2d(x.codes.double(), k, mod.stride, mod.padding, ceil_mode=mod.ceil_mode,
                            count_include_pad=True, divisor_override=1)
        m, s = int_ops.quantize_multiplier(x.scale / (k[0] * k[1] * q.scale))
        y = int_ops.sum_requant(np.rint(sums.numpy()).astype(np.int64), m, s, q.lo, q.hi)
        return QTensor(_t(y), q.scale, q.signed)

    def op_mean(self, n, args, kwargs):
        x = args[0]
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        dims = tuple(d % x.codes.dim() for d in dims)
        self.qm.node_q[n.name].consts["keepdim"] = bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))
        return self._reduce_mean(n, x, dims)

    def _last_dim(self, n, args, kwargs, x):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        if dim not in (-1, x.codes.dim() - 1):
            raise UnsupportedOpError(f"softmax over dim {dim} at node '{n.name}' ({source_of(n)}): only the last dim")

    def op_softmax(self, n, args, kwargs):
        x, q = args[0], self.qm.node_q[n.name]
        mod = self.qm.module(n)
        if mod is not None:
            self._last_dim(n, (x, mod.dim), {}, x)
        else:
            self._last_dim(n, args, kwargs, x)
        return QTensor(_t(float_ops.softmax(x.np, x.scale, q.scale, q.signed)), q.scale, q.signed)

    def op_gelu(self, n, args, kwargs):
        x, q = args[0], self.qm.node_q[n.name]
        return QTensor(_t(float_ops.gelu(x.np, x.scale, q.scale, q.signed)), q.scale, q.signed)

    def op_layernorm(self, n, args, kwargs):
        x, q = args[0], self.qm.node_q[n.name]
        c = q.consts
        y = float_ops.layernorm(x.np, x.scale, c["gamma"], c["beta"], c["eps"], q.scale, q.signed)
        return QTensor(_t(y), q.scale, q.signed)


class QuantizedModel:
    """A model quantized to 8 bits whose GEMM layers can run channels in 4 bits.

    ``forward(x)`` takes float NCHW input and returns dequantized float outputs;
    ``run(x)`` returns the integer ``QTensor``. ``set_ratio(r)`` picks each layer's 4-bit
    count from the selection (if one is attached) or the uniform per-layer rule.
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

    def module(self, n):
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
    def run(self, x) -> QTensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        with torch.no_grad():
            return _IntInterpreter(self).run(x.float())

    def forward(self, x) -> torch.Tensor:
        out = self.run(x)
        return _map(out, lambda q: q.dequantize().float() if isinstance(q, QTensor) else q)

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
