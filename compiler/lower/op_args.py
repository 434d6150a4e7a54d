"""What an op's fx node says beyond its inputs: one small reader per op kind.

The lowering functions never look at ``fx.args`` / ``fx.kwargs`` themselves; they ask
here. The op arguments themselves were parsed once, at capture, into
``node.meta["params"]`` (``quant/op_params.py``); these readers only pick what a lowering
needs (window sizes as (h, w) pairs, axes, constants) and find the operand nodes.
"""

from __future__ import annotations

import torch

from ..errors import CompileError


def _params(fx) -> dict:
    """The op's arguments as capture normalized them (``quant/op_params.py``)."""
    return fx.meta["params"]


def tensor_operands(fx) -> list:
    """The positional arguments of ``fx`` that are graph nodes (add/sub operands)."""
    return [a for a in fx.args if hasattr(a, "name")]


def mul_factor(fx):
    """The Python number a ``mul`` node multiplies its tensor by."""
    return _params(fx)["factor"]


def pad_amounts(qm, fx) -> tuple:
    """(left, right, top, bottom) zero padding of a pad module."""
    return tuple(_params(fx)["padding"])


def maxpool_args(qm, fx):
    """(kernel, stride, padding, dilation) as (h, w) pairs and ``ceil_mode`` (the stride
    defaults to the kernel)."""
    p = _params(fx)
    return p["kernel"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"]


def avgpool_window(qm, fx):
    """(kernel, stride, padding) as (h, w) pairs of a windowed average pool; None for an
    average over the whole plane (global pooling)."""
    p = _params(fx)
    if p["mode"] == "global":
        return None
    if p["mode"] != "window":
        raise CompileError(f"average pool at '{fx.name}' ({p['mode']}) cannot be lowered")
    return p["kernel"], p["stride"], p["padding"]


def mean_dims(fx, ndim: int) -> tuple:
    """The axes a ``mean`` reduces, non-negative and sorted, for an ``ndim``-d input."""
    dims = _params(fx)["dims"]
    if dims is None:
        raise CompileError(f"mean over all dims at '{fx.name}' cannot be lowered: give the dims")
    return tuple(sorted(a % ndim for a in dims))


def cat_args(fx, ndim: int):
    """(the concatenated nodes, the axis, non-negative for an ``ndim``-d output)."""
    return fx.args[0], _params(fx)["dim"] % ndim


def matmul_operands(fx):
    """The (left, right) operand nodes of ``a @ b``."""
    return fx.args[0], fx.args[1]


def transposed_last_two(fx):
    """The node whose last two axes the layout node ``fx`` swaps (``k.transpose(-2, -1)``),
    or None when ``fx`` is another layout op."""
    if fx.op == "call_method" and fx.target == "transpose" or (
            fx.op == "call_function" and fx.target is torch.transpose):
        if tuple(fx.args[1:3]) in ((-2, -1), (-1, -2)):
            return fx.args[0]
    return None


def output_arg(fx):
    """The single node the model returns."""
    arg = fx.args[0]
    if not hasattr(arg, "name"):
        raise CompileError("the model must return a single tensor to compile it")
    return arg
