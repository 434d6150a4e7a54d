"""A fast float32 "fake-quant" evaluation of a ``QuantizedModel`` (APPROXIMATE).

The exact integer runtime (quant/runtime.py) runs int64 / float64 numpy code and is too
slow to score thousands of candidate selections. ``FakeQuantModel`` re-runs the same graph
with the same walk (quant/graph_walk.py, which defines what every op means) and float32
torch tensors that hold *integer-valued codes*: ``FakeQuantBackend`` supplies arithmetic
that follows every step of the integer contract (docs/numeric_contract.md):

* a GEMM's 4-bit channels are lowered as ``clamp(round(x8 / 2**e), lo, hi) * 2**e`` with
  round half to even (``torch.round``) and the same shifts (effective or naive, static from
  the calibrated ranges or dynamic per sample); weights likewise, per output channel and
  group (or per weight). Because ``(x4 << ex) * (w4 << ew) == (x4 * w4) << (ex + ew)``, the
  mixed GEMM becomes one ordinary float32 conv / matmul of the lowered tensors;
* requantization uses the same dyadic multipliers ``M / 2**s`` as a float product followed by
  ``floor(v + 0.5)``; residual adds, pooling, concatenation and the float ops (LayerNorm,
  softmax, GELU) follow quant/int_ops.py and quant/float_ops.py.

Where it differs from the exact runtime: float32 accumulation (exact only while partial
sums stay below 2**24) and float32 products in the requantizations, so a value that lands
within about 1e-6 of a rounding boundary can come out one code apart. tests/quant/
test_select_fake_quant.py bounds the difference (logits within a few output codes, top-1
agreement >= 97 % on test models). Search uses this path; accuracy reported by experiments
comes from the exact runtime unless said otherwise.

With ``trainable=True`` the model owns a copy of the (BatchNorm-folded) float graph and
derives the integer weights from its parameters on every forward, with straight-through
estimators for every rounding, so it can be finetuned (quant/finetune.py).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from numeric.ranges import group_bounds

from . import float_ops, int_ops
from .graph_walk import GraphWalk, map_values
from .rounding import code_range

_THRESH_SIGNED = [8.0 * 2.0**k for k in range(27)]
_THRESH_UNSIGNED = [16.0 * 2.0**k for k in range(27)]


def shift_of_range(lo: torch.Tensor, hi: torch.Tensor, signed: bool, extraction: str) -> torch.Tensor:
    """Torch twin of ``extraction.shift_for_range`` (float tensors of integer codes)."""
    if extraction == "naive":
        return torch.full_like(lo, 4.0)
    if signed:
        need = torch.maximum(torch.clamp(-lo, min=0), torch.clamp(hi + 1, min=0))
        ts = _THRESH_SIGNED
    else:
        need = torch.clamp(hi + 1, min=0)
        ts = _THRESH_UNSIGNED
    e = torch.zeros_like(lo)
    for t in ts[:6]:  # codes are at most 8 bits wide: shifts never exceed 4 + slack
        e = e + (need > t).to(lo.dtype)
    return e


def ste_round(v: torch.Tensor) -> torch.Tensor:
    """Round half to even; the gradient passes straight through."""
    if not v.requires_grad:
        return torch.round(v)
    return v + (torch.round(v) - v).detach()


def ste_floor_half(v: torch.Tensor) -> torch.Tensor:
    """``floor(v + 0.5)`` (the requantizer's round half up); straight-through gradient."""
    if not v.requires_grad:
        return torch.floor(v + 0.5)
    return v + (torch.floor(v + 0.5) - v).detach()


def lower4_t(codes: torch.Tensor, e: torch.Tensor, signed: bool) -> torch.Tensor:
    """``clamp(rshift_rne(codes, e), lo4, hi4) * 2**e`` on float tensors."""
    lo, hi = (-8.0, 7.0) if signed else (0.0, 15.0)
    p = torch.exp2(e)
    if codes.requires_grad:
        return torch.clamp(ste_round(codes / p), lo, hi) * p
    y = codes / p
    return y.round_().clamp_(lo, hi).mul_(p)


class FQTensor:
    """A value between nodes: float32 integer-valued codes, a scale and signedness (the
    fake-quant twin of ``runtime.QTensor``)."""

    __slots__ = ("codes", "scale", "signed")

    def __init__(self, codes, scale, signed):
        self.codes, self.scale, self.signed = codes, float(scale), bool(signed)


def _dyadic(m, s) -> torch.Tensor:
    return torch.as_tensor(np.asarray(m, dtype=np.float64) / np.exp2(np.asarray(s, dtype=np.float64)))


def _requant(acc, mult, lo, hi, precise=True, fresh=False):
    """``clamp(floor(acc * mult + 0.5))``. Without gradients and with ``precise`` the product
    is taken in float64, so it matches the dyadic integer requantizer except within ~1e-13 of
    a rounding boundary; otherwise in float32 (about 1e-7 relative). ``fresh``: ``acc`` is a
    temporary nobody else holds, so the float32 path may overwrite it (no new allocation)."""
    if acc.requires_grad:
        return torch.clamp(ste_floor_half(acc * mult), float(lo), float(hi))
    if precise:
        y = acc.double()
        y.mul_(mult.double() if isinstance(mult, torch.Tensor) else mult)
    else:
        m = mult.float() if isinstance(mult, torch.Tensor) else mult
        y = acc.mul_(m) if fresh else acc * m
    y.add_(0.5).floor_().clamp_(float(lo), float(hi))
    return y.float() if precise else y


def _quant_float(x, scale, signed):
    lo, hi = code_range(signed)
    return torch.clamp(ste_round(x / scale), float(lo), float(hi))


class _LayerPlan:
    """Lowering tables of one GEMM layer for a given 4-bit channel set."""

    __slots__ = ("n4", "mask", "groups", "x_shift", "w_eff")

    def __init__(self, n4, mask, groups, x_shift, w_eff):
        self.n4, self.mask, self.groups, self.x_shift, self.w_eff = n4, mask, groups, x_shift, w_eff


class FakeQuantModel(nn.Module):
    """Float32 fake-quant twin of a ``QuantizedModel`` (approximate; see module docstring).

    ``forward(x, plan=None)`` returns dequantized float outputs. ``plan`` maps GEMM layer
    names to ``(order, n4)``; layers not named use the quantized model's current
    ``order``/``max4``. Lowering tables are cached per (layer, 4-bit channel list).
    """

    def __init__(self, qmodel, *, trainable: bool = False, precise: bool = True,
                 cache_size: int = 4096):
        super().__init__()
        self.qm = qmodel
        self.precise = bool(precise)
        self.trainable = bool(trainable)
        self.config = qmodel.config
        self.gm = copy.deepcopy(qmodel.gm) if trainable else qmodel.gm
        self._mods = dict(self.gm.named_modules())
        self._w = {}  # name -> float32 weight codes (frozen mode)
        self._wrange = {}  # name -> (min, max) over kernel taps, [N, C] each (frozen mode)
        self._consts = {}
        for name, L in qmodel.layers.items():
            w = torch.as_tensor(L.w_codes.astype(np.float32))
            self._consts[name] = dict(
                bias=torch.as_tensor(L.bias.astype(np.float32)),
                mult=_dyadic(L.m, L.s),
                x_range=torch.as_tensor(L.x_range.astype(np.float32)),
            )
            if not trainable:
                self._w[name] = w
                w3 = w.reshape(w.shape[0], w.shape[1], -1)
                self._wrange[name] = (w3.amin(dim=2), w3.amax(dim=2))
        self._cache: dict = {}
        self._cache_size = int(cache_size)
        self.plan_override: dict | None = None

    # ---- per-layer lowering tables ---------------------------------------------------
    def _state(self, name):
        L = self.qm.layers[name]
        if self.plan_override is not None and name in self.plan_override:
            order, n4 = self.plan_override[name]
        else:
            order, n4 = L.order, L.max4
        return L, np.asarray(order), int(n4)

    def _plan(self, name, w_codes=None) -> _LayerPlan | None:
        L, order, n4 = self._state(name)
        if n4 == 0:
            return None
        key = (name, n4, order[:n4].tobytes())
        if w_codes is None and key in self._cache:
            return self._cache[key]
        cfg = self.config
        G = L.group_size
        groups = [torch.as_tensor(order[a:z].astype(np.int64)) for a, z in group_bounds(n4, n4, G)]
        mask = torch.zeros(L.in_channels, dtype=torch.bool)
        mask[torch.as_tensor(order[:n4].astype(np.int64))] = True
        xr = self._consts[name]["x_range"]
        x_shift = torch.zeros(L.in_channels)
        for ch in groups:
            lo, hi = xr[0, ch].min(), xr[1, ch].max()
            x_shift[ch] = shift_of_range(lo.reshape(1), hi.reshape(1), L.x_signed, cfg.extraction)
        if w_codes is None:
            w = self._w[name]
            wmin, wmax = self._wrange[name]
        else:
            w = w_codes
            w3 = w.detach().reshape(w.shape[0], w.shape[1], -1)
            wmin, wmax = w3.amin(dim=2), w3.amax(dim=2)
        tail = (1,) * (w.dim() - 2)
        if cfg.weight_shift == "group":
            ew = torch.zeros(w.shape[0], L.in_channels)
            for ch in groups:
                ew[:, ch] = shift_of_range(wmin[:, ch].amin(dim=1), wmax[:, ch].amax(dim=1), True,
                                           cfg.extraction)[:, None]
            ew = ew.reshape(*ew.shape, *tail)
        else:
            ew = shift_of_range(torch.clamp(w.detach(), max=0), torch.clamp(w.detach(), min=0), True,
                                cfg.extraction)
        m = mask.reshape(1, -1, *tail)
        w_eff = torch.where(m, lower4_t(w, ew, True), w)
        plan = _LayerPlan(n4, mask, groups, x_shift, w_eff)
        if w_codes is None:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = plan
        return plan

    def _lower_input(self, L, plan: _LayerPlan, x: torch.Tensor, channel_dim: int) -> torch.Tensor:
        """x codes with the 4-bit channels lowered (static or dynamic shifts)."""
        cfg = self.config
        c = L.in_channels
        shape = [1] * x.dim()
        shape[channel_dim] = c
        if cfg.dynamic:
            xb = x.detach().movedim(channel_dim, -1).reshape(x.shape[0] if x.dim() > 1 else 1, -1, c)
            mn, mx = xb.amin(dim=1), xb.amax(dim=1)  # [B, C]
            ex = torch.zeros(xb.shape[0], c)
            for ch in plan.groups:
                e = shift_of_range(mn[:, ch].amin(dim=1), mx[:, ch].amax(dim=1), L.x_signed,
                                   cfg.extraction)
                ex[:, ch] = e[:, None]
            bshape = list(shape)
            bshape[0] = xb.shape[0]
            if channel_dim != 1 and x.dim() > 2:
                ex = ex.reshape(xb.shape[0], *([1] * (x.dim() - 2)), c)
            else:
                ex = ex.reshape(bshape)
        else:
            ex = plan.x_shift.reshape(shape)
        low = lower4_t(x, ex, L.x_signed)
        if plan.n4 == c:
            return low
        return torch.where(plan.mask.reshape(shape), low, x)

    # ---- weights in trainable mode -----------------------------------------------------
    def _train_weights(self, name, mod, x_scale):
        """(weight codes, bias codes, output multipliers) from the current float parameters."""
        L = self.qm.layers[name]
        w = mod.weight
        flat = w.detach().reshape(w.shape[0], -1).abs().amax(dim=1)
        s_w = torch.where(flat > 0, flat / 127.0, torch.ones_like(flat))
        sh = (-1,) + (1,) * (w.dim() - 1)
        w_codes = torch.clamp(ste_round(w / s_w.reshape(sh)), -127.0, 127.0)
        b = mod.bias if mod.bias is not None else torch.zeros(w.shape[0])
        bias = ste_round(b / (x_scale * s_w))
        mult = x_scale * s_w / L.out_scale
        return w_codes, bias, mult

    # ---- execution ----------------------------------------------------------------------
    def forward(self, x, plan: dict | None = None, prefix_cache=None):
        """Dequantized outputs. ``prefix_cache`` (a ``quant.select.prefix_cache.PrefixCache``,
        only for one fixed input ``x``) reuses the values at graph cut points computed
        earlier under the same upstream layer plans."""
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        self.plan_override = plan
        try:
            if not self.trainable:
                with torch.no_grad():
                    return self._forward(x, prefix_cache)
            return self._forward(x, prefix_cache)
        finally:
            self.plan_override = None

    def walker(self, on_value=None) -> GraphWalk:
        """A graph walk of this model with the fake-quant arithmetic."""
        return GraphWalk(self.gm, self.qm, FakeQuantBackend(self), on_value)

    def _forward(self, x, prefix_cache):
        if prefix_cache is None:
            out = self.walker().run(x.float())
        else:
            out = prefix_cache.run(self, x.float())
        return map_values(out, lambda v: v.codes * v.scale if isinstance(v, FQTensor) else v)

    def plan_key(self, name):
        L, order, n4 = self._state(name)
        return (n4, order[:n4].tobytes()) if n4 and L.groups == 1 else (0, b"")

    def gemm(self, n, x: FQTensor) -> torch.Tensor:
        """Output codes of GEMM node ``n`` on input ``x``."""
        name = n.name
        L = self.qm.layers[name]
        mod = self._mods[n.target]
        conv = L.kind == "conv"
        if self.trainable:
            w, bias, mult = self._train_weights(name, mod, L.x_scale)
        else:
            w = self._w[name]
            bias, mult = self._consts[name]["bias"], self._consts[name]["mult"]
        xc = x.codes
        cdim = 1 if conv else xc.dim() - 1
        plan = None
        if L.groups == 1:
            plan = self._plan(name, w if self.trainable else None)
        if plan is not None:
            w = plan.w_eff
            xc = self._lower_input(L, plan, xc, cdim)
        if conv:
            acc = F.conv2d(xc, w, bias, L.stride, L.padding, L.dilation, L.groups)
            return _requant(acc, mult.reshape(1, -1, 1, 1), L.lo, L.hi, self.precise, fresh=True)
        acc = F.linear(xc, w, bias)
        return _requant(acc, mult, L.lo, L.hi, self.precise, fresh=True)


class FakeQuantBackend:
    """The float32 arithmetic of every op for ``GraphWalk`` (what the ops mean is the
    walk's): integer-valued float32 codes, float64 requantization products when
    ``fq.precise`` and no gradient flows, straight-through gradients when training."""

    value_type = FQTensor
    label = "fake-quant"

    def __init__(self, fq: FakeQuantModel):
        self.fq = fq
        self.precise = fq.precise

    def quantize_input(self, x, q):
        return _quant_float(x, q.scale, q.signed)

    def const_codes(self, v, scale, signed):
        return _quant_float(torch.as_tensor(v).float(), scale, signed)

    def const_value(self, v):
        t = torch.as_tensor(v).float()
        sc, sg = int_ops.act_scale(float(t.detach().min()), float(t.detach().max()))
        return FQTensor(_quant_float(t, sc, sg), sc, sg)

    def maxpool(self, codes, p):
        return F.max_pool2d(codes, p["kernel"], p["stride"], p["padding"], p["dilation"],
                            ceil_mode=p["ceil_mode"])

    def clamp(self, codes, lo, hi):
        if hi is None:
            return torch.clamp(codes, min=float(lo))
        return torch.clamp(codes, float(lo), float(hi))

    def gemm(self, n, L, x: FQTensor):
        return self.fq.gemm(n, x)

    def add(self, a, b, ma, mb, s, q):
        p = 2.0**s
        if self.precise and not (a.requires_grad or b.requires_grad):
            a, b = a.double(), b.double()
        acc = a * (ma / p) + b * (mb / p)
        return _requant(acc, 1.0, q.lo, q.hi, self.precise, fresh=True)

    def matmul(self, name, a, b, q):
        acc = a @ b
        return _requant(acc, float(_dyadic(q.consts["m"], q.consts["s"])), q.lo, q.hi,
                        self.precise)

    def rescale(self, codes, m, s, q):
        return _requant(codes, m / 2.0**s, q.lo, q.hi, self.precise)

    def window_sum(self, codes, p):
        return F.avg_pool2d(codes, p["kernel"], p["stride"], p["padding"],
                            ceil_mode=p["ceil_mode"], count_include_pad=True, divisor_override=1)

    def sum_requant(self, sums, m, s, q):
        return _requant(sums, m / 2.0**s, q.lo, q.hi, self.precise, fresh=True)

    def _float_op(self, x: FQTensor, q, exact_fn, torch_fn):
        """Exact values from the shared float op (quant/float_ops.py); when training, the
        gradient of the torch version of the same op flows through them."""
        codes = x.codes.detach().to(torch.int64).numpy()
        exact = torch.as_tensor(exact_fn(codes).astype(np.float32))
        if not x.codes.requires_grad:
            return exact
        lo, hi = code_range(q.signed)
        surrogate = torch.clamp(torch_fn(x.codes * x.scale) / q.scale, float(lo), float(hi))
        return surrogate + (exact - surrogate).detach()

    def softmax(self, x: FQTensor, q):
        return self._float_op(x, q, lambda c: float_ops.softmax(c, x.scale, q.scale, q.signed),
                              lambda v: torch.softmax(v, dim=-1))

    def gelu(self, x: FQTensor, q):
        return self._float_op(x, q, lambda c: float_ops.gelu(c, x.scale, q.scale, q.signed),
                              F.gelu)

    def layernorm(self, n, x: FQTensor, q):
        mod = self.fq._mods.get(n.target) if n.op == "call_module" else None
        c = q.consts
        if self.fq.trainable and isinstance(mod, nn.LayerNorm):
            gamma, beta = mod.weight, mod.bias
            g_np = gamma.detach().numpy() if gamma is not None else c["gamma"]
            b_np = beta.detach().numpy() if beta is not None else c["beta"]
        else:
            gamma = beta = None
            g_np, b_np = c["gamma"], c["beta"]

        def torch_ln(v):
            return F.layer_norm(v, (v.shape[-1],), gamma, beta, c["eps"])

        return self._float_op(x, q, lambda a: float_ops.layernorm(a, x.scale, g_np, b_np, c["eps"],
                                                                  q.scale, q.signed), torch_ln)
