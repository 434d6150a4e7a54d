"""Models saved outside Python code: a ``torch.export`` program (``.pt2``) or an ONNX file.

Both become an ordinary eval-mode ``nn.Module`` built from ``torch.nn`` layers and torch
functions, which is what the quantizer traces (``quant.capture``):

* ``.pt2``: ``torch.export.load(path).module()`` holds ATen ops (``aten.conv2d`` reading
  parameters by ``get_attr``). ``load_exported`` rebuilds the graph with ``nn.Conv2d``,
  ``nn.Linear``, ``nn.BatchNorm2d`` and ``nn.LayerNorm`` modules holding those parameters
  and the matching torch functions for the rest (``_ATEN``). An op outside that table is
  reported by name.
* ONNX: converted by onnx2torch. onnx2torch imports torchvision for its NonMaxSuppression
  and RoiAlign converters only; the PyPI torchvision wheels are built against a CUDA torch
  and do not load with the CPU torch this project pins, so when torchvision cannot be
  imported those two converters get a placeholder that raises if an ONNX model uses them.

``example_shape(path)`` reads the per-sample input shape a file records, when it has one.
"""

from __future__ import annotations

import logging
import operator
import sys
import types

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from quant.errors import ModelError

aten = torch.ops.aten


def _identity(x, *args, **kwargs):
    return x


# ATen overload packet -> torch callable taking the same positional arguments
_ATEN = {
    aten.relu: torch.relu, aten.relu_: torch.relu, aten.relu6: F.relu6,
    aten.hardtanh: F.hardtanh, aten.hardtanh_: F.hardtanh, aten.gelu: F.gelu,
    aten.add: operator.add, aten.add_: operator.add, aten.sub: operator.sub,
    aten.mul: operator.mul, aten.matmul: torch.matmul, aten.bmm: torch.bmm,
    aten.max_pool2d: F.max_pool2d, aten.avg_pool2d: F.avg_pool2d,
    aten.adaptive_avg_pool2d: F.adaptive_avg_pool2d, aten.mean: torch.mean,
    aten.flatten: torch.flatten, aten.view: torch.reshape, aten.reshape: torch.reshape,
    aten._unsafe_view: torch.reshape, aten.permute: torch.permute,
    aten.transpose: torch.transpose, aten.cat: torch.cat, aten.concat: torch.cat,
    aten.softmax: torch.softmax, aten._softmax: lambda x, dim, half=False: torch.softmax(x, dim),
    aten.unsqueeze: torch.unsqueeze, aten.squeeze: torch.squeeze,
    aten.dropout: _identity, aten.contiguous: _identity, aten.clone: _identity,
    aten.alias: _identity, aten.detach: _identity,
}


def _op_packet(target):
    return getattr(target, "overloadpacket", target)


def _fetch(gm, target: str) -> torch.Tensor:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj.detach().clone()


def _arg(args, i, default):
    return args[i] if len(args) > i else default


def _module_for(gm, node):
    """The nn layer an ATen GEMM/normalization node computes, with its parameters copied."""
    op = _op_packet(node.target)
    a = node.args
    t = lambda i: _fetch(gm, a[i].target) if len(a) > i and a[i] is not None else None  # noqa: E731
    if op is aten.conv2d:
        w, b = t(1), t(2)
        m = nn.Conv2d(w.shape[1] * int(_arg(a, 6, 1)), w.shape[0], tuple(w.shape[2:]),
                      stride=_arg(a, 3, 1), padding=_arg(a, 4, 0), dilation=_arg(a, 5, 1),
                      groups=int(_arg(a, 6, 1)), bias=b is not None)
    elif op is aten.linear:
        w, b = t(1), t(2)
        m = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    elif op is aten.batch_norm:
        val = a[0].meta.get("val")
        if val is None or val.dim() != 4:
            return None, []  # only BatchNorm2d (reported as unsupported below)
        w, b, mean, var = t(1), t(2), t(3), t(4)
        m = nn.BatchNorm2d(mean.numel(), eps=float(a[7]), affine=w is not None)
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
    elif op is aten.layer_norm:
        w, b = t(2), t(3)
        m = nn.LayerNorm(list(a[1]), eps=float(_arg(a, 4, 1e-5)),
                         elementwise_affine=w is not None)
    else:
        return None, []
    with torch.no_grad():
        if w is not None:
            m.weight.copy_(w)
        if b is not None:
            m.bias.copy_(b)
    return m.eval(), [a[0]]


def _layer_name(node, root) -> str:
    """The user's module path for a layer (``layer1.0.conv1`` -> ``layer1_0_conv1``)."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0]
        name = str(path).replace(".", "_").replace("/", "_")
        if name and name.isidentifier() and not hasattr(root, name):
            return name
    return node.name


def rebuild_aten_graph(gm: fx.GraphModule, source: str) -> fx.GraphModule:
    """An ``nn``-level GraphModule computing what the ATen graph ``gm`` computes."""
    root = nn.Module()
    graph = fx.Graph()
    env: dict = {}
    out = None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node] = graph.placeholder(node.name)
        elif node.op == "get_attr":
            continue  # parameters are copied into the layers that read them
        elif node.op == "call_module":
            continue  # torch.export's input guards
        elif node.op == "call_function":
            if node.target is operator.getitem:
                env[node] = graph.call_function(operator.getitem,
                                                fx.node.map_arg(node.args, lambda n: env[n]))
                continue
            mod, ins = _module_for(gm, node)
            if mod is not None:
                name = _layer_name(node, root)
                root.add_module(name, mod)
                env[node] = graph.call_module(name, tuple(env[i] for i in ins))
                continue
            fn = _ATEN.get(_op_packet(node.target))
            if fn is None or node.target is aten.batch_norm.default:
                raise ModelError(f"{source}: exported op {node.target} is not supported "
                                 "(convert the model with plain torch.nn layers)")
            unknown = [a for a in node.all_input_nodes if a.op == "get_attr"]
            for a in unknown:  # a constant tensor used directly (e.g. an added parameter)
                if a not in env:
                    buf = a.target.replace(".", "_")
                    root.register_buffer(buf, _fetch(gm, a.target))
                    env[a] = graph.get_attr(buf)
            env[node] = graph.call_function(fn, fx.node.map_arg(node.args, lambda n: env[n]),
                                            fx.node.map_arg(node.kwargs, lambda n: env[n]))
        elif node.op == "output":
            res = node.args[0]
            if isinstance(res, (tuple, list)):
                if len(res) != 1:
                    raise ModelError(f"{source}: the model returns {len(res)} outputs; "
                                     "the NPU compiler takes a model with one output tensor")
                res = res[0]
            out = graph.output(env[res])
    if out is None:
        raise ModelError(f"{source}: the exported graph has no output")
    return fx.GraphModule(root, graph, class_name="ExportedModel").eval()


def load_exported(path: str) -> nn.Module:
    """A ``torch.export`` program file as an ``nn``-level module."""
    quiet = logging.getLogger("torch.export")  # it logs a traceback before raising
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        ep = torch.export.load(path)
    except Exception as exc:
        raise ModelError(f"{path}: not a torch.export program "
                         f"({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})") from None
    finally:
        quiet.setLevel(level)
    return rebuild_aten_graph(ep.module(), path)


def exported_input_shape(path: str) -> tuple | None:
    ep = torch.export.load(path)
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name not in ep.graph_signature.inputs_to_parameters \
                and node.name not in ep.graph_signature.inputs_to_buffers:
            val = node.meta.get("val")
            if val is not None and all(isinstance(s, int) for s in val.shape):
                return tuple(int(s) for s in val.shape[1:])
    return None


def _import_onnx2torch():
    """onnx2torch, importable without a working torchvision (see the module docstring)."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        for k in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[k]

        def _missing(*args, **kwargs):
            raise ModelError("this ONNX model uses NonMaxSuppression/RoiAlign, which need a "
                             "working torchvision")

        ops = types.ModuleType("torchvision.ops")
        ops.nms = ops.roi_align = ops.box_convert = _missing
        tv = types.ModuleType("torchvision")
        tv.ops = ops
        sys.modules.update({"torchvision": tv, "torchvision.ops": ops})
        try:
            import onnx2torch
        except ImportError:
            raise ModelError(_NO_ONNX2TORCH) from None
        finally:
            del sys.modules["torchvision"], sys.modules["torchvision.ops"]
        return onnx2torch
    try:
        import onnx2torch
    except ImportError:
        raise ModelError(_NO_ONNX2TORCH) from None
    return onnx2torch


_NO_ONNX2TORCH = "reading ONNX models needs onnx2torch (bash scripts/install.sh)"


def load_onnx(path: str) -> nn.Module:
    """An ONNX file converted to torch by onnx2torch."""
    try:
        import onnx
    except ImportError:
        raise ModelError(f"{path}: reading ONNX needs the 'onnx' and 'onnx2torch' packages "
                         "(bash scripts/install.sh)") from None
    try:
        proto = onnx.load(path)
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelError(f"{path}: not a valid ONNX model ({_first_line(exc)})") from None
    o2t = _import_onnx2torch()
    try:
        model = o2t.convert(proto)
    except Exception as exc:
        raise ModelError(f"{path}: onnx2torch cannot convert it ({_first_line(exc)})") from None
    return model.eval()


def onnx_input_shape(path: str) -> tuple | None:
    import onnx

    proto = onnx.load(path)
    inits = {i.name for i in proto.graph.initializer}
    for inp in proto.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims[1:]):
            return tuple(int(d.dim_value) for d in dims[1:])
        return None
    return None


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
