"""The graph's ends and its non-tensor values: the input region, constants and sizes
(bound for the ops that read them), and the output tensor."""

from __future__ import annotations

from ..errors import CompileError
from ..memory import Tensor
from .op_args import output_arg


def lower_input_node(ctx, name, d):
    t = Tensor("input", "input", d["shape"], d["signed"], d["scale"], None, bool(d["fmap"]))
    ctx.program.add_region("input", shape=t.phys, dtype=t.dtype)
    ctx.program.inputs.append("input")
    ctx.env[name] = t


def lower_const_node(ctx, name, d):
    ctx.env[name] = d.get("const")


def lower_shape_node(ctx, name, d):
    ctx.env[name] = d.get("value")


def lower_output_node(ctx, name, d):
    t = ctx.read(name, output_arg(d["fx"]).name)
    if t.perm is not None:
        raise CompileError("output tensor is not in logical channel order (layout pass bug)")
    ctx.program.outputs.append(t.region)
    ctx.out_tensor = t
