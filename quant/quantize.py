"""``quantize(model, calib_data, config)``: float model -> ``QuantizedModel``.

Steps: capture (trace, fold BatchNorm, classify ops) -> fuse ReLU/ReLU6 into the GEMM or
add before them -> calibrate -> per-node scales (propagated through ops that only move
codes) -> integer weights, biases and dyadic multipliers -> channel priority per layer.
"""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from . import int_ops
from .calibration import calibrate
from .capture import GEMM_KINDS, prepare, source_of
from .config import QuantConfig
from .errors import ConfigError, UnsupportedOpError
from .layers import GemmLayer, NodeQ
from .priority import lowering_error, priority_order
from .rounding import code_range, quantize_multiplier
from .runtime import QuantizedModel

REQUANT_KINDS = ("input", "conv", "linear", "add", "sub", "matmul", "cat", "avgpool", "mean",
                 "softmax", "gelu", "layernorm")
INHERIT_KINDS = ("layout", "shape", "maxpool", "fused", "pad")


def _fuse_activations(gm):
    for n in gm.graph.nodes:
        if n.meta["kind"] not in ("relu", "relu6", "hardtanh"):
            continue
        p = n.args[0]
        if p.meta.get("kind") in ("conv", "linear", "add") and len(p.users) == 1 and "act" not in p.meta:
            p.meta["act"] = "relu" if n.meta["kind"] == "relu" else "relu6"
            p.meta["act_node"] = n.name
            n.meta["kind"] = "fused"


def _first_input(n):
    for a in n.all_input_nodes:
        if a.meta.get("kind") not in ("const", "shape"):
            return a
    return None


BIAS_LIMIT = 2.0**29  # |bias code| bound, so that bias + sum stays far inside int32


def quantize_weights(w: np.ndarray, min_scale=None):
    """Symmetric per-output-channel int8 codes in [-127, 127] and their scales.

    ``min_scale`` [N] floors the scale: a channel whose weights are all but zero while its
    bias is not (BatchNorm folding makes such channels) would otherwise need a bias code
    beyond int32."""
    w = np.asarray(w, dtype=np.float64)
    mx = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(mx > 0, mx / 127.0, 1.0)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    codes = np.clip(np.rint(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127)
    return codes.astype(np.int64), scale


def quantize(model: nn.Module, calib_data, config: QuantConfig | None = None, *,
             progress: bool = True, act_ranges: dict | None = None,
             weight_codes: dict | None = None) -> QuantizedModel:
    """Quantize ``model`` to 8 bits with mixed 4-bit capable GEMMs (ratio starts at 0).

    ``act_ranges`` {node: (lo, hi)} replaces the calibrated range of those nodes' outputs, and
    ``weight_codes`` {layer: (codes, scales)} a GEMM's per-output-channel int8 weights (codes
    in [-127, 127], the module's layout): hooks for baselines that choose their own clipping
    (experiments/int4_ptq.py). Everything downstream (biases, multipliers, adds) follows."""
    config = config or QuantConfig()
    config.validate()
    gm = prepare(model)
    _fuse_activations(gm)
    stats, chan, shapes, _ = calibrate(gm, calib_data, config.observer, config.percentile,
                                       config.calib_batches, progress)
    mods = dict(gm.named_modules())
    scale_of: dict = {}  # node name -> (scale, signed) of its output
    node_q: dict = {}
    layers: dict = {}
    gemm_nodes = [n for n in gm.graph.nodes if n.meta["kind"] in GEMM_KINDS]
    for n in gm.graph.nodes:
        kind = n.meta["kind"]
        if kind in ("const", "output"):
            continue
        if kind not in ("input", "fused") and n.name not in shapes:
            n.meta["kind"] = kind = "shape"  # computes sizes/indices, not activations
        src = _first_input(n)
        if kind in REQUANT_KINDS:
            stat_name = n.meta.get("act_node", n.name)
            if stat_name not in stats:
                raise UnsupportedOpError(f"node '{n.name}' ({kind}, {source_of(n)}) produced no float tensor")
            lo, hi = stats[stat_name].range(config.observer)
            if act_ranges and n.name in act_ranges:
                lo, hi = (float(v) for v in act_ranges[n.name])
            scale, signed = int_ops.act_scale(lo, hi)
            clo, chi = int_ops.out_clamp(signed, n.meta.get("act"), scale)
            q = NodeQ(scale, signed, clo, chi, n.meta.get("act"))
            node_q[n.name] = q
            scale_of[n.name] = (scale, signed)
        elif kind in INHERIT_KINDS:
            scale_of[n.name] = scale_of.get(src.name) if src is not None else None
            continue
        elif kind in ("relu", "relu6", "hardtanh"):
            scale_of[n.name] = (scale_of[src.name][0], False)
            continue
        elif kind == "mul":
            c = n.meta["params"]["factor"]
            if src is None or c is None:
                raise UnsupportedOpError(f"multiply at node '{n.name}' ({source_of(n)}): only by a positive number")
            scale_of[n.name] = (scale_of[src.name][0] * float(c), scale_of[src.name][1])
            continue
        else:
            raise UnsupportedOpError(f"no quantization rule for op kind '{kind}' at node '{n.name}'")

        if kind == "matmul":
            sa = scale_of[n.args[0].name][0]
            sb = scale_of[n.args[1].name][0]
            q.consts["m"], q.consts["s"] = quantize_multiplier(sa * sb / q.scale)
        elif kind == "layernorm":
            mod = mods.get(n.target) if n.op == "call_module" else None
            if not isinstance(mod, nn.LayerNorm):
                raise UnsupportedOpError(f"layer_norm at node '{n.name}' ({source_of(n)}): use nn.LayerNorm")
            c = mod.normalized_shape[-1]
            q.consts["gamma"] = (mod.weight.detach().numpy().astype(np.float32) if mod.weight is not None
                                 else np.ones(c, np.float32))
            q.consts["beta"] = (mod.bias.detach().numpy().astype(np.float32) if mod.bias is not None
                                else np.zeros(c, np.float32))
            q.consts["eps"] = float(mod.eps)
            if len(mod.normalized_shape) != 1:
                raise UnsupportedOpError(f"LayerNorm over {mod.normalized_shape} at '{n.name}': only the last dim")
        elif kind in GEMM_KINDS:
            layers[n.name] = _gemm_layer(n, mods[n.target], scale_of[src.name], q, chan[n.name],
                                         shapes[n.name], config, n is gemm_nodes[0],
                                         n is gemm_nodes[-1], (weight_codes or {}).get(n.name))
    qm = QuantizedModel(gm, layers, node_q, config, shapes)
    qm.set_ratio(0.0)
    return qm


def _gemm_layer(n, mod, in_q, out_q: NodeQ, cstats, out_shape, config, is_first, is_last,
                weights=None):
    x_scale, x_signed = in_q
    w = mod.weight.detach().numpy()
    b = mod.bias.detach().numpy() if mod.bias is not None else np.zeros(w.shape[0])
    if weights is None:
        w_codes, w_scale = quantize_weights(w, np.abs(b.astype(np.float64)) / (x_scale * BIAS_LIMIT))
    else:
        w_codes, w_scale = np.asarray(weights[0], dtype=np.int64), np.asarray(weights[1], np.float64)
        if w_codes.shape != w.shape or w_scale.shape != (w.shape[0],) or np.abs(w_codes).max() > 127:
            raise ConfigError(f"weight_codes for '{n.name}': codes {w_codes.shape} in [-127, 127] "
                              f"and scales ({w.shape[0]},) expected")
    bias = np.rint(b.astype(np.float64) / (x_scale * w_scale)).astype(np.int64)
    m, s = int_ops.gemm_epilogue_tables(x_scale, w_scale, out_q.scale)
    clo, chi = code_range(x_signed)
    x_range = np.stack([np.clip(np.rint(cstats.lo / x_scale), clo, chi),
                        np.clip(np.rint(cstats.hi / x_scale), clo, chi)]).astype(np.int64)
    kind = n.meta["kind"]
    if kind == "conv":
        c_in = mod.in_channels
        macs = int(np.prod(out_shape[2:])) * mod.out_channels * (c_in // mod.groups) * int(np.prod(mod.kernel_size))
        extra = dict(groups=mod.groups, stride=tuple(mod.stride), padding=mod.padding if isinstance(mod.padding, str) else tuple(mod.padding),
                     dilation=tuple(mod.dilation), kernel=tuple(mod.kernel_size))
    else:
        c_in = mod.in_features
        macs = int(np.prod(out_shape[1:-1])) * mod.out_features * c_in
        extra = {}
    why = ""
    if extra.get("groups", 1) != 1:
        why = "depthwise/grouped conv"
    elif is_first and config.first_layer_8bit:
        why = "first layer"
    elif is_last and config.head_8bit:
        why = "classifier head"
    elif n.name in config.keep_8bit:
        why = "config.keep_8bit"
    group_size = config.layer_group_size(c_in)
    L = GemmLayer(name=n.name, kind=kind, in_channels=c_in, out_channels=w.shape[0],
                  w_codes=w_codes, w_scale=w_scale, bias=bias, x_scale=x_scale, x_signed=x_signed,
                  x_range=x_range, x_mean_sq=cstats.mean_sq / x_scale**2, out_scale=out_q.scale,
                  out_signed=out_q.signed, act=out_q.act, lo=out_q.lo, hi=out_q.hi, m=m, s=s,
                  macs=macs, eligible=not why, why_8bit=why, group_size=group_size, **extra)
    if L.groups == 1:
        err = lowering_error(w_codes, x_range[0], x_range[1], L.x_mean_sq, x_signed, config.extraction)
        L.order = priority_order(err)
    else:
        L.order = np.arange(c_in, dtype=np.int64)
    L.priority = L.order.copy()
    return L
