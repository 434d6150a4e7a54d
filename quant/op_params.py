"""The arguments of each captured op, parsed once at capture time.

``quant.capture.classify`` stores ``op_params(node, kind, module)`` as ``node.meta["params"]``
next to ``node.meta["kind"]``, so that no executor (integer runtime, fake-quant, compiler)
reads fx ``args``/``kwargs`` or module attributes again. Keys by kind (every other kind has
an empty dict):

========== ==================================================================================
kind       ``params``
========== ==================================================================================
maxpool    ``kernel``, ``stride``, ``padding``, ``dilation``: (h, w) pairs (stride defaults to
           the kernel); ``ceil_mode``, ``return_indices``: bool
avgpool    ``mode``: ``"window"`` (``nn.AvgPool2d`` / ``F.avg_pool2d``: ``kernel``,
           ``stride``, ``padding``: pairs; ``ceil_mode``), ``"global"`` (adaptive to 1x1: a
           mean over H and W, dims kept), ``"adaptive"`` (any other ``output_size``) or
           ``"unsupported"`` (``why``: a divisor override, or padding left out of the count);
           executors refuse the last two
mean       ``dims``: tuple of ints as written (may be negative) or None; ``keepdim``: bool
cat        ``dim``: int as written (may be negative)
softmax    ``dim``: int as written, or None
mul        ``factor``: the first Python number among the arguments, or None
add, sub   ``sign``: +1 or -1 (the second operand's sign)
pad        ``padding``: (left, right, top, bottom)
========== ==================================================================================
"""

from __future__ import annotations

from numeric.checks import pair as _pair

_MAXPOOL_ARGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")


def _call_args(node, names) -> dict:
    """The arguments after the input, by name (positional first, keywords override)."""
    vals = dict(zip(names, node.args[1:]))
    vals.update({k: v for k, v in node.kwargs.items() if k in names})
    return vals


def _maxpool(node, mod) -> dict:
    if mod is not None:
        a = {k: getattr(mod, k) for k in _MAXPOOL_ARGS}
    else:
        a = _call_args(node, _MAXPOOL_ARGS)
    k = a["kernel_size"]
    s = a.get("stride")
    return dict(kernel=_pair(k), stride=_pair(k if s is None or s == [] else s),
                padding=_pair(a.get("padding", 0)), dilation=_pair(a.get("dilation", 1)),
                ceil_mode=bool(a.get("ceil_mode", False)),
                return_indices=bool(a.get("return_indices", False)))


_AVGPOOL_ARGS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override")


def _avgpool(node, mod) -> dict:
    adaptive = hasattr(mod, "output_size") if mod is not None else \
        getattr(node.target, "__name__", "") == "adaptive_avg_pool2d"
    if adaptive:
        out_size = mod.output_size if mod is not None else _call_args(node, ("output_size",)).get(
            "output_size")
        if _pair(out_size) == (1, 1):
            return {"mode": "global"}
        return {"mode": "adaptive", "output_size": out_size}
    a = {k: getattr(mod, k) for k in _AVGPOOL_ARGS} if mod is not None else \
        _call_args(node, _AVGPOOL_ARGS)
    k = _pair(a["kernel_size"])
    s = a.get("stride")
    p = dict(mode="window", kernel=k, stride=_pair(k if s is None or s == [] else s),
             padding=_pair(a.get("padding", 0)), ceil_mode=bool(a.get("ceil_mode", False)))
    if a.get("divisor_override") is not None or (
            not a.get("count_include_pad", True) and p["padding"] != (0, 0)):
        p["mode"] = "unsupported"
        p["why"] = "divisor_override or count_include_pad=False with padding"
    return p


def _mean(node) -> dict:
    args, kwargs = node.args, node.kwargs
    dims = args[1] if len(args) > 1 else kwargs.get("dim")
    if dims is not None:
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
    keepdim = bool(kwargs.get("keepdim", args[2] if len(args) > 2 else False))
    return {"dims": dims, "keepdim": keepdim}


def _softmax(node, mod) -> dict:
    if mod is not None:
        return {"dim": mod.dim}
    return {"dim": node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else -1)}


def op_params(node, kind: str, mod=None) -> dict:
    """``node``'s arguments normalized for its op ``kind`` (``mod``: its module, if any)."""
    if kind == "maxpool":
        return _maxpool(node, mod)
    if kind == "avgpool":
        return _avgpool(node, mod)
    if kind == "mean":
        return _mean(node)
    if kind == "cat":
        return {"dim": node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)}
    if kind == "softmax":
        return _softmax(node, mod)
    if kind == "mul":
        c = [a for a in node.args if isinstance(a, (int, float))]
        return {"factor": c[0] if c else None}
    if kind in ("add", "sub"):
        return {"sign": -1 if kind == "sub" else 1}
    if kind == "pad":
        return {"padding": tuple(int(p) for p in mod.padding)}
    return {}
