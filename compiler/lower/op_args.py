"""What an op's fx node says beyond its inputs: one small reader per op kind.

The lowering functions never look at ``fx.args`` / ``fx.kwargs`` themselves; they ask
here. Each reader returns plain Python values (window sizes as (h, w) pairs, axes,
constants, the operand nodes), so the place these arguments come from can change (for
instance to node metadata normalized at capture time) without touching the lowerings.
"""

from __future__ import annotations

import torch

from ..errors import CompileError


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def tensor_operands(fx) -> list:
    """The positional arguments of ``fx`` that are graph nodes (add/sub operands)."""
    return [a for a in fx.args if hasattr(a, "name")]


def mul_factor(fx):
    """The Python number a ``mul`` node multiplies its tensor by."""
    return [a for a in fx.args if isinstance(a, (int, float))][0]


def pad_amounts(qm, fx) -> tuple:
    """(left, right, top, bottom) zero padding of a pad module."""
    return tuple(int(p) for p in qm.module(fx).padding)


def maxpool_args(qm, fx):
    """(kernel, stride, padding, dilation) as (h, w) pairs and ``ceil_mode``, from the
    ``nn.MaxPool2d`` module or the ``F.max_pool2d`` call (stride defaults to the kernel)."""
    mod = qm.module(fx)
    if mod is not None:
        k, s, p, dil, ceil = mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode
    else:
        args = list(fx.args[1:]) + [None] * 5
        kw = fx.kwargs
        k = kw.get("kernel_size", args[0])
        s = kw.get("stride", args[1]) or k
        p = kw.get("padding", args[2] if args[2] is not None else 0)
        dil = kw.get("dilation", args[3] if args[3] is not None else 1)
        ceil = kw.get("ceil_mode", bool(args[4]))
    return _pair(k), _pair(s), _pair(p), _pair(dil), ceil


def avgpool_window(qm, fx):
    """(kernel, stride, padding) as (h, w) pairs of an ``nn.AvgPool2d`` module; None for
    an average over the whole plane (adaptive pooling to 1x1, or the functional form)."""
    mod = qm.module(fx)
    if mod is None or hasattr(mod, "output_size"):
        return None
    return _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size), _pair(mod.padding)


def mean_dims(fx, ndim: int) -> tuple:
    """The axes a ``mean`` reduces, non-negative and sorted, for an ``ndim``-d input."""
    dims = fx.kwargs.get("dim", fx.args[1] if len(fx.args) > 1 else None)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return tuple(sorted(a % ndim for a in dims))


def cat_args(fx, ndim: int):
    """(the concatenated nodes, the axis, non-negative for an ``ndim``-d output)."""
    dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim", 0)
    return fx.args[0], dim % ndim


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
