"""One walk over a quantized model's captured graph, shared by every numeric backend.

``GraphWalk`` runs the prepared fx graph node by node. What each op means (its operands,
scales, dims, windows, the checks that refuse what the hardware cannot run) is written
here once, from the normalized node metadata that capture and quantization leave:
``node.meta["kind"]``, ``node.meta["params"]`` (quant/op_params.py), the ``NodeQ`` of a
requantizing node and the ``GemmLayer`` of a GEMM. A *backend* supplies only the arithmetic
on its own code tensors:

* ``IntBackend`` (quant/runtime.py): exact int64 / float64 numpy, the numeric contract;
* ``FakeQuantBackend`` (quant/fake_quant.py): float32 torch on integer-valued codes, fast
  and approximate, for the selection search and finetuning.

A backend has ``value_type`` (built as ``value_type(codes, scale, signed)``), ``label`` (for
error messages) and the methods called below. ``on_value(node, value)``, if given, sees
every node's value as it is computed (the compiler records shapes and scales with it; the
selection's prefix cache keeps values at cut points).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.fx as fx

from . import int_ops
from .capture import source_of
from .errors import FlexiQError, UnsupportedOpError

#: What an op raises when the model uses it in a way the executors do not support. Other
#: exceptions (timeouts, interrupts, memory, I/O) pass through unchanged.
OP_FAILURES = (TypeError, ValueError, NotImplementedError, RuntimeError, IndexError,
               AttributeError, KeyError)


def map_values(obj, fn):
    """``fn`` applied to every leaf of nested lists, tuples and dicts."""
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_values(o, fn) for o in obj)
    if isinstance(obj, dict):
        return {k: map_values(v, fn) for k, v in obj.items()}
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
    ``fx.Interpreter`` on the codes inside ``cls`` values (anything with ``codes``,
    ``scale``, ``signed``); tensor outputs get the first input's scale and signedness."""
    q = first_of(args, cls)
    unwrap = lambda a: a.codes if isinstance(a, cls) else a  # noqa: E731
    out = getattr(fx.Interpreter, n.op)(interp, n.target, map_values(args, unwrap),
                                         map_values(kwargs, unwrap))
    wrap = lambda t: cls(t, q.scale, q.signed) if isinstance(t, torch.Tensor) and q else t  # noqa: E731
    return map_values(out, wrap)


class GraphWalk(fx.Interpreter):
    """Run ``gm`` (``qm.gm`` or a copy of it) with ``backend``'s arithmetic; ``qm`` gives
    the quantization records (``node_q``, ``layers``)."""

    def __init__(self, gm: fx.GraphModule, qm, backend, on_value=None):
        super().__init__(gm)
        self.qm = qm
        self.backend = backend
        self.V = backend.value_type
        self.on_value = on_value

    def run_node(self, n):
        out = self._step(n)
        if self.on_value is not None:
            self.on_value(n, out)
        return out

    def _step(self, n):
        kind = n.meta["kind"]
        if kind in ("const", "output"):
            return super().run_node(n)
        if kind == "input":
            q = self.qm.node_q[n.name]
            return self.V(self.backend.quantize_input(super().run_node(n), q), q.scale, q.signed)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        try:
            return _OPS[kind](self, n, args, kwargs)
        except FlexiQError:
            raise
        except OP_FAILURES as exc:  # the op's arguments are ones it cannot take
            raise UnsupportedOpError(
                f"{self.backend.label} execution failed at node '{n.name}' ({kind}, "
                f"{source_of(n)}): {exc}") from exc

    def out(self, n, codes):
        """A requantizing node's output value."""
        q = self.qm.node_q[n.name]
        return self.V(codes, q.scale, q.signed)

    def operand(self, n, v):
        """An activation, or a float constant tensor quantized at a scale of its own."""
        if isinstance(v, self.V):
            return v
        if isinstance(v, torch.Tensor):
            return self.backend.const_value(v)
        raise UnsupportedOpError(f"add of a Python number at node '{n.name}' ({source_of(n)})")


# --- ops that only move codes ----------------------------------------------------------
def _passthrough(w, n, args, kwargs):
    return run_on_codes(w, n, args, kwargs, w.V)


def _fused(w, n, args, kwargs):  # an activation folded into its producer
    return args[0]


def _maxpool(w, n, args, kwargs):
    x, p = args[0], n.meta["params"]
    if p["return_indices"]:
        raise UnsupportedOpError(f"max pool returning indices at node '{n.name}' ({source_of(n)})")
    return w.V(w.backend.maxpool(x.codes, p), x.scale, x.signed)


def _relu(w, n, args, kwargs):
    x = args[0]
    return w.V(w.backend.clamp(x.codes, 0, None), x.scale, False)


def _relu6(w, n, args, kwargs):
    x = args[0]
    hi = int(round(6.0 / x.scale))
    return w.V(w.backend.clamp(x.codes, 0, hi), x.scale, False)


# --- GEMMs -----------------------------------------------------------------------------
def _gemm(w, n, args, kwargs):
    L = w.qm.layers[n.name]
    return w.V(w.backend.gemm(n, L, args[0]), L.out_scale, L.out_signed)


# --- requantizing elementwise / reduction ops --------------------------------------------
def _add(w, n, args, kwargs):
    q = w.qm.node_q[n.name]
    a, b = w.operand(n, args[0]), w.operand(n, args[1])
    ma, mb, s = int_ops.two_input_multipliers(a.scale, b.scale, q.scale)
    return w.out(n, w.backend.add(a.codes, b.codes, ma, n.meta["params"]["sign"] * mb, s, q))


def _mul(w, n, args, kwargs):
    a, b = args[0], args[1]
    if isinstance(b, w.V) and not isinstance(a, w.V):
        a, b = b, a
    if isinstance(a, w.V) and isinstance(b, (int, float)) and b > 0:
        return w.V(a.codes, a.scale * float(b), a.signed)  # a pure scale change
    raise UnsupportedOpError(
        f"multiply at node '{n.name}' ({source_of(n)}): only a product with a positive "
        "Python number is supported")


def _matmul(w, n, args, kwargs):
    a, b = args[0], args[1]
    if not (isinstance(a, w.V) and isinstance(b, w.V)):
        raise UnsupportedOpError(
            f"matmul at node '{n.name}' ({source_of(n)}) needs two activations; "
            "a matmul with a parameter must be an nn.Linear")
    return w.out(n, w.backend.matmul(n.name, a.codes, b.codes, w.qm.node_q[n.name]))


def _cat(w, n, args, kwargs):
    q = w.qm.node_q[n.name]
    parts = []
    for v in args[0]:
        if isinstance(v, w.V):
            m, s = int_ops.quantize_multiplier(v.scale / q.scale)
            parts.append(w.backend.rescale(v.codes, m, s, q))
        else:
            parts.append(w.backend.const_codes(v, q.scale, q.signed))
    return w.out(n, torch.cat(parts, dim=n.meta["params"]["dim"]))


def _reduce_mean(w, n, x, dims, keepdim):
    q = w.qm.node_q[n.name]
    sums = x.codes.sum(dim=dims, keepdim=keepdim)
    count = int(np.prod([x.codes.shape[d] for d in dims]))
    m, s = int_ops.quantize_multiplier(x.scale / (count * q.scale))
    return w.out(n, w.backend.sum_requant(sums, m, s, q))


def _avgpool(w, n, args, kwargs):
    x, p = args[0], n.meta["params"]
    if p["mode"] == "global":
        return _reduce_mean(w, n, x, (2, 3), True)
    if p["mode"] == "adaptive":
        raise UnsupportedOpError(
            f"adaptive average pool to {p['output_size']} at node '{n.name}' ({source_of(n)}): "
            "only global pooling (output 1x1) is supported")
    if p["mode"] != "window":
        raise UnsupportedOpError(f"average pool at node '{n.name}' ({source_of(n)}): {p['why']} "
                                 "is not supported")
    q = w.qm.node_q[n.name]
    k = p["kernel"]
    sums = w.backend.window_sum(x.codes, p)
    m, s = int_ops.quantize_multiplier(x.scale / (k[0] * k[1] * q.scale))
    return w.out(n, w.backend.sum_requant(sums, m, s, q))


def _mean(w, n, args, kwargs):
    x, p = args[0], n.meta["params"]
    if p["dims"] is None:
        raise UnsupportedOpError(f"mean over all dims at node '{n.name}' ({source_of(n)}): "
                                 "give the dims")
    dims = tuple(d % x.codes.dim() for d in p["dims"])
    return _reduce_mean(w, n, x, dims, p["keepdim"])


def _softmax(w, n, args, kwargs):
    x, dim = args[0], n.meta["params"]["dim"]
    if dim not in (-1, x.codes.dim() - 1):
        raise UnsupportedOpError(f"softmax over dim {dim} at node '{n.name}' ({source_of(n)}): "
                                 "only the last dim")
    return w.out(n, w.backend.softmax(x, w.qm.node_q[n.name]))


def _gelu(w, n, args, kwargs):
    return w.out(n, w.backend.gelu(args[0], w.qm.node_q[n.name]))


def _layernorm(w, n, args, kwargs):
    return w.out(n, w.backend.layernorm(n, args[0], w.qm.node_q[n.name]))


_OPS = {
    "layout": _passthrough, "shape": _passthrough,
    "pad": _passthrough,  # zero padding: code 0 is the value 0 (no zero points)
    "fused": _fused, "maxpool": _maxpool, "relu": _relu, "relu6": _relu6, "hardtanh": _relu6,
    "conv": _gemm, "linear": _gemm, "add": _add, "sub": _add, "mul": _mul, "matmul": _matmul,
    "cat": _cat, "avgpool": _avgpool, "mean": _mean, "softmax": _softmax, "gelu": _gelu,
    "layernorm": _layernorm,
}
#: the op kinds the walk executes (besides input, const and output)
WALKED_KINDS = frozenset(_OPS)
