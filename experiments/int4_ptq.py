"""A real uniform INT4 post-training quantization baseline, built from FP32 (method ``int4_ptq``).

What torchao or Brevitas users would compare with, mapped onto the NPU contract
(docs/numeric_contract.md) so that it compiles and runs in 4-bit folds:

* weights of every eligible layer: symmetric per-output-channel 4-bit codes ``q`` in [-7, 7]
  with the clipping searched per channel for the least squared error
  (``alpha = max|W[n]| * k / 100``, ``k`` = 30 ... 100, scale ``alpha / 7``). In the 8-bit
  tables they are stored as ``16 q`` with scale ``s4 / 16``, so the top-4-bit (naive)
  extraction returns exactly ``q``;
* activations feeding an eligible layer: one 4-bit scale per tensor (signed [-8, 7] or, after
  ReLU/ReLU6, unsigned [0, 15]) whose clipping is searched for the least squared error on
  calibration samples; the producing tensor's 8-bit scale is set to ``s4 / 16``, so
  ``x4 = rshift(x8, 4)`` (half to even) is the 4-bit code of the clipped value. Other
  consumers of that tensor (residual adds) see the same clipped 8-bit tensor;
* extraction "naive" (shift 4 everywhere), every eligible layer in 4 bits at ratio 1; the
  first conv, the depthwise convs and the classifier head stay 8-bit, as the contract's
  defaults keep them (``QuantConfig.first_layer_8bit`` / ``head_8bit``).

At ratio 0 the same tables run in 8-bit folds (4-bit weight values, clipped 8-bit
activations); the sweep measures that row only for cycles (``speedup``).
"""

from __future__ import annotations

import numpy as np
import torch

W_LEVELS = 7  # symmetric weight codes in [-7, 7]: 16 q then stays inside [-127, 127]
CLIP_STEPS = np.arange(30, 101) / 100.0
ACT_STEPS = np.arange(10, 101) / 100.0
SAMPLES_PER_BATCH = 20_000


def mse_weight_int4(w: np.ndarray, min_scale=None) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel: (codes in [-7, 7] shaped like ``w``, scales [N]) with the clipping
    of least squared error; ``min_scale`` [N] floors the scales (bias codes must fit)."""
    w = np.asarray(w, dtype=np.float64)
    flat = w.reshape(w.shape[0], -1)
    mx = np.abs(flat).max(axis=1)
    mx = np.where(mx > 0, mx, 1.0)
    best_err = np.full(len(flat), np.inf)
    best_s = mx / W_LEVELS
    for k in CLIP_STEPS:
        s = (mx * k / W_LEVELS)[:, None]
        q = np.clip(np.rint(flat / s), -W_LEVELS, W_LEVELS)
        err = ((flat - q * s) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_s = np.where(better, s[:, 0], best_s)
    if min_scale is not None:
        best_s = np.maximum(best_s, np.asarray(min_scale, dtype=np.float64))
    codes = np.clip(np.rint(flat / best_s[:, None]), -W_LEVELS, W_LEVELS)
    return codes.reshape(w.shape).astype(np.int64), best_s


def mse_act_scale_int4(samples: np.ndarray, signed: bool) -> float:
    """The 4-bit scale (signed [-8, 7] or unsigned [0, 15]) of least squared error."""
    v = np.asarray(samples, dtype=np.float64).reshape(-1)
    lo, hi = (-8, 7) if signed else (0, 15)
    mx = float(np.abs(v).max()) if signed else float(max(v.max(), 0.0))
    if mx <= 0:
        return 1e-8
    best, best_s = np.inf, mx / hi
    for k in ACT_STEPS:
        s = mx * k / hi
        err = float(((v - np.clip(np.rint(v / s), lo, hi) * s) ** 2).mean())
        if err < best:
            best, best_s = err, s
    return best_s


def _producer(node, kinds_inherit, kinds_requant):
    """The node whose requantization sets the scale of ``node``'s value."""
    n = node
    while n is not None and n.meta.get("kind") not in kinds_requant:
        if n.meta.get("kind") not in kinds_inherit:
            return None
        ins = [a for a in n.all_input_nodes if a.meta.get("kind") not in ("const", "shape")]
        n = ins[0] if ins else None
    return n


def _sample_inputs(qm, calib, layer_names, seed: int) -> dict:
    """Seeded subsamples of the float inputs of the named GEMM layers over the calibration data."""
    from quant.calibration import iter_batches

    gm = qm.gm
    nodes = {n.name: n for n in gm.graph.nodes}
    mods = dict(gm.named_modules())
    gen = torch.Generator().manual_seed(seed)
    samples: dict = {k: [] for k in layer_names}
    hooks = []
    for name in layer_names:
        mod = mods[nodes[name].target]

        def hook(_m, args, name=name):
            x = args[0].detach().reshape(-1)
            idx = torch.randint(0, x.numel(), (min(SAMPLES_PER_BATCH, x.numel()),), generator=gen)
            samples[name].append(x[idx].double().numpy())
        hooks.append(mod.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for x in iter_batches(calib):
                gm(x)
    finally:
        for h in hooks:
            h.remove()
    return {k: np.concatenate(v) for k, v in samples.items() if v}


def int4_ptq_tables(qm, calib, *, seed: int = 0) -> tuple[dict, dict]:
    """``(act_ranges, weight_codes)`` for ``quant.quantize`` from a first 8-bit quantization
    ``qm`` of the same model (its folded float weights and graph names)."""
    from quant.quantize import INHERIT_KINDS, REQUANT_KINDS

    gm = qm.gm
    nodes = {n.name: n for n in gm.graph.nodes}
    mods = dict(gm.named_modules())
    from quant.quantize import BIAS_LIMIT

    eligible = [k for k, L in qm.layers.items() if L.eligible]
    samples = _sample_inputs(qm, calib, eligible, seed)
    per_producer: dict = {}
    producer_of: dict = {}
    for name in eligible:
        src = _producer(nodes[name].args[0], INHERIT_KINDS + ("relu", "relu6", "hardtanh"),
                        REQUANT_KINDS)
        if src is None or src.op == "placeholder" or name not in samples:
            continue
        per_producer.setdefault(src.name, []).append(samples[name])
        producer_of[name] = src.name
    act_ranges, x_scale = {}, {}
    for src, parts in per_producer.items():
        v = np.concatenate(parts)
        signed = bool(qm.node_q[src].signed) if src in qm.node_q else bool(v.min() < 0)
        s4 = mse_act_scale_int4(v, signed)
        s8 = s4 / 16.0
        act_ranges[src] = (-127.0 * s8, 127.0 * s8) if signed else (0.0, 255.0 * s8)
        x_scale[src] = s8
    weight_codes = {}
    for name in eligible:
        mod = mods[nodes[name].target]
        w = mod.weight.detach().numpy()
        b = mod.bias.detach().numpy() if mod.bias is not None else np.zeros(w.shape[0])
        xs = x_scale.get(producer_of.get(name), qm.layers[name].x_scale)
        # as in the 8-bit rule: a near-zero channel with a real bias (BatchNorm folding) gets
        # a scale floor so that its bias code stays far inside int32
        q, s4 = mse_weight_int4(w, 16.0 * np.abs(b.astype(np.float64)) / (xs * BIAS_LIMIT))
        weight_codes[name] = (16 * q, s4 / 16.0)
    return act_ranges, weight_codes


def int4_ptq_quantize(model, calib, config, *, seed: int = 0, progress: bool = False):
    """The INT4 PTQ model: quantize once for names and folded weights, search the 4-bit
    clippings, quantize again with them (``config`` should have ``extraction="naive"``)."""
    import quant

    calib = list(calib) if not isinstance(calib, torch.Tensor) else [calib]
    first = quant.quantize(model, calib, config, progress=progress)
    act_ranges, weight_codes = int4_ptq_tables(first, calib, seed=seed)
    return quant.quantize(model, calib, config, progress=progress, act_ranges=act_ranges,
                          weight_codes=weight_codes)
