"""Lowering of the row-wise vector-unit ops: residual add and sub, ReLU clamps, LayerNorm,
softmax and GELU, each over a [rows, channels] view in bands of rows
(compiler/lower/rowwise.py)."""

from __future__ import annotations

import numpy as np

from npu_sim import isa
from quant import int_ops
from quant.errors import UnsupportedOpError
from quant.rounding import quantize_float

from ..memory import to_phys
from ..tables import float_bits
from .op_args import tensor_operands
from .rowwise import lower_rowwise


def const_region(ctx, name, value, shape, signed_scale=None, perm=None, fmap=False):
    """Quantize a float constant like the runtime does and store it broadcast to ``shape``.

    ``signed_scale`` (scale, signed) forces the output quantization (cat); otherwise the
    constant's own range picks it (add operand). Returns (region name, scale, signed)."""
    v = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    if signed_scale is None:
        sc, sg = int_ops.act_scale(float(np.min(value)), float(np.max(value)))
    else:
        sc, sg = signed_scale
    codes = to_phys(quantize_float(v, sc, sg), perm, fmap)
    region = f"c:{name}"
    ctx.program.add_region(region, codes.astype("int8" if sg else "uint8"))
    return region, sc, sg


# ---------------------------------------------------------------- instructions
def lower_add(ctx, name, d, operands, y, sign=1):
    q = d["q"]
    srcs, scales = [], []
    for k, op in enumerate(operands):
        if isinstance(op, np.ndarray):  # a constant operand (e.g. a position embedding)
            region, sc, _ = const_region(ctx, f"{name}.{k}", op, y.shape, perm=y.perm, fmap=y.fmap)
            srcs.append(region)
            scales.append(sc)
        else:
            srcs.append(op)
            scales.append(op.scale)
    ma, mb, s = int_ops.two_input_multipliers(scales[0], scales[1], q.scale)

    def make(a, dst, rows, cols, _t, orf):
        return isa.Add(a_addr=a[0], b_addr=a[1], ma=ma, mb=sign * mb, s=s, lo=q.lo, hi=q.hi,
                       dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, srcs, y, make)


def lower_clamp(ctx, name, x, y, lo, hi):
    def make(a, dst, rows, cols, _t, orf):
        return isa.Clamp(src_addr=a[0], lo=lo, hi=hi, dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make)


def lower_layernorm(ctx, name, d, x, y):
    q = d["q"]
    c = x.channels
    gamma = ctx.table(f"{name}:gamma", float_bits(q.consts["gamma"]))
    beta = ctx.table(f"{name}:beta", float_bits(q.consts["beta"]))

    def make(a, dst, rows, cols, ta, orf):
        return isa.LayerNorm(src_addr=a[0], gamma_addr=ta[0], beta_addr=ta[1],
                             eps=q.consts["eps"], in_scale=x.scale, out_scale=q.scale,
                             out_signed=q.signed, dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make, tables=[(gamma, c), (beta, c)])


def lower_float_op(ctx, name, d, x, y, kind):
    q = d["q"]
    cls = {"softmax": isa.Softmax, "gelu": isa.Gelu}[kind]

    def make(a, dst, rows, cols, _t, orf):
        return cls(src_addr=a[0], in_scale=x.scale, out_scale=q.scale, out_signed=q.signed,
                   dst_addr=dst, rows=rows, cols=cols, **orf)

    lower_rowwise(ctx, name, [x], y, make)


# ---------------------------------------------------------------- nodes
def _operands(ctx, name):
    out = []
    for a in tensor_operands(ctx.g.nodes[name]["fx"]):
        src = ctx.src(name, a.name) if hasattr(a, "name") else None
        if src is None:
            raise UnsupportedOpError(f"node '{name}': operand {a!r} is a Python number")
        v = ctx.env[src]
        if isinstance(v, np.ndarray):
            out.append(v)
        else:
            out.append(ctx.read(name, a.name))
    return out


def lower_add_node(ctx, name, d, sign=1):
    ops = _operands(ctx, name)
    y = ctx.new(name)
    lower_add(ctx, name, d, ops, y, sign)
    ctx.env[name] = y


def lower_sub_node(ctx, name, d):
    lower_add_node(ctx, name, d, sign=-1)


def _clamp_node(ctx, name, d, lo, hi_fn):
    x = ctx.read(name, ctx.first_input(name))
    y = ctx.new_tensor(name, d["shape"], False, x.scale, x.perm)
    lower_clamp(ctx, name, x, y, lo, hi_fn(x))
    ctx.env[name] = y


def lower_relu_node(ctx, name, d):
    _clamp_node(ctx, name, d, 0, lambda x: 255 if not x.signed else 127)


def lower_relu6_node(ctx, name, d):
    """ReLU6, and hardtanh (captured only with the bounds (0, 6))."""
    _clamp_node(ctx, name, d, 0, lambda x: int(round(6.0 / x.scale)))


def _float_node(ctx, name, d, kind):
    x = ctx.read(name, ctx.first_input(name))
    y = ctx.new(name, perm=x.perm if kind == "gelu" else None)
    lower_float_op(ctx, name, d, x, y, kind)
    ctx.env[name] = y


def lower_softmax_node(ctx, name, d):
    _float_node(ctx, name, d, "softmax")


def lower_gelu_node(ctx, name, d):
    _float_node(ctx, name, d, "gelu")


def lower_layernorm_node(ctx, name, d):
    x = ctx.read(name, ctx.first_input(name))
    y = ctx.new(name, perm=None)
    lower_layernorm(ctx, name, d, x, y)
    ctx.env[name] = y
