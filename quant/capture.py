"""Graph capture for quantization: torch.fx trace, BatchNorm folding, clean-up, op kinds.

``prepare(model)`` returns an ``fx.GraphModule`` in which BatchNorm layers are folded into
the convs before them, dropout/identity nodes are gone, and every node has an op *kind*
(``node.meta["kind"]``) from the supported set below and its arguments parsed once
(``node.meta["params"]``, keys in quant/op_params.py). Anything else raises
``UnsupportedOpError`` naming the op, the node and the source line it came from.
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .errors import ModelError, UnsupportedOpError
from .op_params import op_params

# kinds with integer semantics of their own (quant/int_ops.py)
GEMM_KINDS = ("conv", "linear")
# ops that only move or select codes: run on the integer tensor unchanged, scale kept
LAYOUT_FUNCS = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.roll,
                torch.squeeze, torch.unsqueeze, operator.getitem, torch.narrow, torch.unflatten,
                torch.movedim}
LAYOUT_METHODS = {"reshape", "view", "permute", "transpose", "contiguous", "flatten",
                  "expand", "unsqueeze", "squeeze", "roll", "unbind", "chunk", "split",
                  "narrow", "clone", "unflatten", "movedim", "swapaxes"}
SHAPE_METHODS = {"size", "dim"}

_MODULE_KINDS = [
    (nn.Conv2d, "conv"), (nn.Linear, "linear"), (nn.ReLU, "relu"), (nn.ReLU6, "relu6"),
    (nn.GELU, "gelu"), (nn.LayerNorm, "layernorm"), (nn.Softmax, "softmax"),
    (nn.AdaptiveAvgPool2d, "avgpool"), (nn.AvgPool2d, "avgpool"), (nn.MaxPool2d, "maxpool"),
    (nn.Flatten, "layout"), (nn.Hardtanh, "hardtanh"), (nn.ZeroPad2d, "pad"),
]
_FUNC_KINDS = {
    operator.add: "add", torch.add: "add", operator.mul: "mul", torch.mul: "mul",
    operator.matmul: "matmul", torch.matmul: "matmul", torch.bmm: "matmul",
    torch.cat: "cat", torch.concat: "cat", F.relu: "relu", torch.relu: "relu",
    F.relu6: "relu6", F.gelu: "gelu", F.softmax: "softmax", torch.softmax: "softmax",
    F.layer_norm: "layernorm", F.adaptive_avg_pool2d: "avgpool", F.avg_pool2d: "avgpool",
    F.max_pool2d: "maxpool", torch.mean: "mean", F.hardtanh: "hardtanh",
    getattr: "shape", operator.floordiv: "shape", operator.truediv: "shape",
    operator.sub: "sub",
}
_METHOD_KINDS = {"softmax": "softmax", "mean": "mean", "relu": "relu", "add": "add",
                 "mul": "mul", "matmul": "matmul", "__add__": "add", "__mul__": "mul"}


class _Tracer(fx.Tracer):
    def __init__(self):
        super().__init__()
        self.record_stack_traces = True


def source_of(node: fx.Node) -> str:
    """The user source line a node came from (last frame of its stack trace), if known."""
    st = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in st.strip().splitlines() if ln.strip()]
    frames = [ln for ln in lines if ln.startswith("File ") and "site-packages/torch/" not in ln
              and "/torch/fx/" not in ln and "/torch/nn/modules/" not in ln]
    return frames[-1] if frames else "unknown source"


def trace(model: nn.Module) -> fx.GraphModule:
    model = copy.deepcopy(model).eval()
    try:
        graph = _Tracer().trace(model)
    except (TypeError, ValueError, NotImplementedError, RuntimeError, AttributeError,
            IndexError, KeyError, AssertionError) as exc:  # data-dependent control flow etc.
        raise UnsupportedOpError(f"torch.fx could not trace {type(model).__name__}: {exc}") from exc
    return fx.GraphModule(model, graph)


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every BatchNorm2d whose input is a conv used only by it into that conv."""
    mods = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(mods.get(node.target), nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module"
                and isinstance(mods.get(prev.target), nn.Conv2d) and len(prev.users) == 1):
            raise UnsupportedOpError(
                f"BatchNorm2d at node '{node.name}' ({source_of(node)}) does not follow a conv "
                "it can be folded into")
        conv, bn = mods[prev.target], mods[node.target]
        with torch.no_grad():
            inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(inv.reshape(-1, 1, 1, 1))
            b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            new_b = (b - bn.running_mean) * inv + bn.bias
            conv.bias = nn.Parameter(new_b)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


def _is_noop(node, mods) -> bool:
    if node.op == "call_module":
        return isinstance(mods.get(node.target), (nn.Dropout, nn.Identity))
    if node.op == "call_function":
        return node.target in (F.dropout,)
    if node.op == "call_method":
        return node.target in ("contiguous", "clone")
    return False


def remove_noops(gm: fx.GraphModule) -> fx.GraphModule:
    mods = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if _is_noop(node, mods):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


def _depends_on_input(node, memo) -> bool:
    if node.name in memo:
        return memo[node.name]
    if node.op == "placeholder":
        r = True
    else:
        r = any(_depends_on_input(a, memo) for a in node.all_input_nodes)
    memo[node.name] = r
    return r


def classify(gm: fx.GraphModule) -> fx.GraphModule:
    """Set ``node.meta["kind"]`` and ``node.meta["params"]`` for every node; raise on
    unsupported ops."""
    mods = dict(gm.named_modules())
    memo: dict = {}
    for node in gm.graph.nodes:
        kind = None
        if node.op in ("placeholder", "output"):
            kind = "input" if node.op == "placeholder" else "output"
        elif node.op == "get_attr" or not _depends_on_input(node, memo):
            kind = "const"  # computed from parameters/buffers alone: folded to a constant
        elif node.op == "call_module":
            mod = mods[node.target]
            for cls, k in _MODULE_KINDS:
                if isinstance(mod, cls):
                    kind = k
                    break
            if kind == "hardtanh" and (mod.min_val, mod.max_val) != (0.0, 6.0):
                kind = None
            if isinstance(mod, nn.ConstantPad2d) and float(mod.value) == 0.0:
                kind = "pad"
            if kind is None:
                raise UnsupportedOpError(
                    f"unsupported module {type(mod).__name__} at node '{node.name}' "
                    f"(module '{node.target}', {source_of(node)})")
        elif node.op == "call_function":
            if node.target in LAYOUT_FUNCS:
                kind = "layout"
            else:
                kind = _FUNC_KINDS.get(node.target)
        elif node.op == "call_method":
            if node.target in LAYOUT_METHODS:
                kind = "layout"
            elif node.target in SHAPE_METHODS:
                kind = "shape"
            else:
                kind = _METHOD_KINDS.get(node.target)
        if kind is None:
            name = getattr(node.target, "__name__", str(node.target))
            raise UnsupportedOpError(
                f"unsupported op '{name}' ({node.op}) at node '{node.name}' ({source_of(node)})")
        node.meta["kind"] = kind
        try:
            node.meta["params"] = op_params(node, kind, mods.get(node.target)
                                            if node.op == "call_module" else None)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            raise UnsupportedOpError(
                f"cannot read the arguments of {kind} at node '{node.name}' "
                f"({source_of(node)}): {exc}") from exc
    return gm


def prepare(model: nn.Module) -> fx.GraphModule:
    """Trace, fold BatchNorm, drop no-ops and classify: the graph the quantizer runs."""
    if not isinstance(model, nn.Module):
        raise UnsupportedOpError(f"expected a torch.nn.Module, got {type(model).__name__}")
    for name, p in list(model.named_parameters()) + list(model.named_buffers()):
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ModelError(f"parameter '{name}' holds non-finite values (NaN or inf)")
    gm = trace(model)
    gm = fold_batchnorm(gm)
    gm = remove_noops(gm)
    return classify(gm)
