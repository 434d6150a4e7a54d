"""A torch model's conv and linear layers as SCALE-Sim topology layers.

Forward hooks record each ``nn.Conv2d`` / ``nn.Linear`` call on an example input (one
image: the first of the batch). A conv becomes a conv row on the part of its padded input its
windows cover (SCALE-Sim has no padding and rounds the output size up, so ``IFMAP =
(out - 1) * stride + kernel`` gives the conv's output size); a grouped
conv becomes one row per group (``<name>.g<i>``, ``C/g`` channels, ``N/g`` filters); a linear
layer over ``M`` rows becomes SCALE-Sim's own GEMM mapping (an ``M x K`` IFMAP, ``N`` filters
of ``1 x K``). Matrix products outside modules (attention) are not layers and are not
exported. A layer called twice gets ``#2``, ``#3`` appended.
"""

from __future__ import annotations

from quant.errors import ConfigError, UnsupportedOpError

from .topology import Layer


def _safe(name: str) -> str:
    return (name or "layer").replace(",", "_").replace("DP", "Dp")


def _used(size: int, k: int, s: int) -> int:
    """Input extent the windows cover: SCALE-Sim counts ``ceil((H - k + s) / s)`` outputs,
    one more than a conv when ``(H - k) % s != 0``, so the row gets the covered extent."""
    return (size - k) // s * s + k


def model_topology(model, example) -> list[Layer]:
    """Layers of ``model`` run on ``example`` (a batch; the first image is used)."""
    import torch

    layers: list[Layer] = []
    seen: dict[str, int] = {}
    hooks = []

    def record(name, mod, inp):
        x = inp[0]
        seen[name] = seen.get(name, 0) + 1
        label = _safe(name) + (f"#{seen[name]}" if seen[name] > 1 else "")
        if isinstance(mod, torch.nn.Conv2d):
            if mod.dilation != (1, 1):
                raise UnsupportedOpError(f"layer {name}: dilation {mod.dilation} has no "
                                         f"SCALE-Sim topology form")
            if mod.stride[0] != mod.stride[1]:
                raise UnsupportedOpError(f"layer {name}: stride {mod.stride} differs by "
                                         f"direction; a SCALE-Sim topology has one stride")
            if isinstance(mod.padding, str):
                raise UnsupportedOpError(f"layer {name}: padding={mod.padding!r}: give "
                                         f"explicit padding to export a topology")
            kh, kw = mod.kernel_size
            s = mod.stride[0]
            h = _used(x.shape[-2] + 2 * mod.padding[0], kh, s)
            w = _used(x.shape[-1] + 2 * mod.padding[1], kw, s)
            g = mod.groups
            c, n = mod.in_channels // g, mod.out_channels // g
            for i in range(g):
                layers.append(Layer(label + (f".g{i}" if g > 1 else ""), h, w, kh, kw, c, n,
                                    mod.stride[0], mod.stride[1]))
        else:  # Linear: rows of one image
            rows = 1
            for d in x.shape[1:-1]:
                rows *= int(d)
            layers.append(Layer.gemm(label, rows, mod.out_features, mod.in_features))

    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            hooks.append(mod.register_forward_pre_hook(
                lambda m, inp, _n=name: record(_n, m, inp)))
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for h in hooks:
            h.remove()
    if not layers:
        raise ConfigError("the model has no Conv2d or Linear layer to export")
    return layers
