"""Finetuning for mixed 4/8 bits: a dual forward pass per batch with straight-through rounding.

Per batch, the same weights run twice through the trainable fake-quant model
(quant/fake_quant.py, ``trainable=True``): once in 8 bits (the teacher) and once mixed, at a
ratio drawn from the ladder (the student, with the selection's channel orders and counts).

    loss = CE(teacher, y) + CE(student, y) + alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))

The teacher's soft labels are detached in the KL term; its own cross-entropy keeps the
8-bit model accurate, since both share the weights. Without labels (unlabelled photos for
the ImageNet models) both paths are distilled from the original, frozen 8-bit model:

    loss = T^2 * KL(p8 || teacher) + alpha * T^2 * KL(p8 || student),   p8 = softmax(frozen 8-bit / T)
 Every rounding (weights, activations,
4-bit lowering, requantization) uses a straight-through estimator; activation scales and
calibrated ranges stay those of the quantized model; weight scales follow the weights.

Training happens on the BatchNorm-folded graph. The result is written back into a copy of
the *original* float model (BatchNorm kept, its shift absorbing the bias change), so it is
stored as a plain state dict with the model's own keys::

    qm2 = finetune(qmodel, train_batches, model=model, selection=sel, steps=200)
    torch.save(qm2.finetune_result.model.state_dict(), "resnet20_fmnist.ft.pt")  # + sel.json
    # later: m = models.get(name, pretrained=False); m.load_state_dict(torch.load(...));
    #        qm = quant.quantize(m, calib_data); qm.attach_selection(Selection.load(...))

``finetune`` re-quantizes the trained model (recalibrating activation scales) and attaches
the same selection: the channel orders and per-ratio counts do not change.
"""

from __future__ import annotations

import copy
import itertools
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .capture import trace
from .errors import ConfigError
from .fake_quant import FakeQuantModel


@dataclass
class FinetuneResult:
    model: nn.Module  # the finetuned float model (original architecture and keys)
    history: list = field(default_factory=list)  # per step: loss, ce8, ce_mixed, kl, ratio


def _plans(qmodel, selection, ratios):
    plans = {}
    for r in ratios:
        table = selection.max4_for_ratio(r) if selection is not None else None
        if table is None:
            table = qmodel.max4_for_ratio(r)
        plan = {}
        for name, L in qmodel.layers.items():
            order = selection.orders.get(name) if selection is not None else None
            order = np.asarray(order if order is not None else L.order)
            plan[name] = (order, int(table.get(name, 0)) if L.eligible else 0)
        plans[r] = plan
    return plans


def _batches(data, steps):
    if steps is None:
        return iter(data)
    return itertools.islice(itertools.cycle(list(data)), int(steps))


def _rebatch(data, size: int) -> list:
    """The same samples (and labels) in batches of at most ``size``."""
    out = []
    for item in data:
        x, y = _xy(item)
        x = torch.as_tensor(x)
        for a in range(0, x.shape[0], size):
            out.append(x[a:a + size] if y is None else (x[a:a + size], torch.as_tensor(y)[a:a + size]))
    return out


LR_LABELLED, LR_DISTILL = 1e-4, 1e-5  # AdamW defaults: labelled loss, distillation
FT_STEP_MACS = 2e9  # automatic batch: about this many MACs per forward (8..64 images)
FT_MACS = 3e11  # automatic steps: about this many MACs of student forwards in all (30..200)


def auto_budget(qmodel) -> tuple[int, int]:
    """``(batch, steps)`` so that finetuning costs about the same for every model: 64 images
    x ~150 steps for ResNet-20 (Fashion-MNIST), 8 images x ~100 steps for EfficientNet-Lite0."""
    macs = sum(L.macs for L in qmodel.layers.values()) or 1
    batch = int(min(64, max(8, FT_STEP_MACS // macs)))
    steps = int(min(200, max(30, FT_MACS // (macs * batch))))
    return batch, steps


def _bn_after_conv(model) -> dict:
    """{conv module path: BatchNorm module path} for the pairs the quantizer folds."""
    gm = trace(model)
    mods = dict(gm.named_modules())
    pairs = {}
    for n in gm.graph.nodes:
        if n.op == "call_module" and isinstance(mods.get(n.target), nn.BatchNorm2d):
            p = n.args[0]
            if getattr(p, "op", None) == "call_module" and isinstance(mods.get(p.target), nn.Conv2d):
                pairs[p.target] = n.target
    return pairs


def unfold_into(model: nn.Module, folded: nn.Module) -> nn.Module:
    """A copy of ``model`` whose BatchNorm-folded form equals the trained graph ``folded``."""
    out = copy.deepcopy(model)
    pairs = _bn_after_conv(out)
    mods = dict(out.named_modules())
    state = folded.state_dict()
    own = out.state_dict()
    done = set()
    with torch.no_grad():
        for conv_path, bn_path in pairs.items():
            conv, bn = mods[conv_path], mods[bn_path]
            w_f = state[f"{conv_path}.weight"]
            b_f = state[f"{conv_path}.bias"]
            inv = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            safe = torch.where(inv != 0, inv, torch.ones_like(inv))
            w = torch.where((inv != 0).reshape(-1, 1, 1, 1), w_f / safe.reshape(-1, 1, 1, 1), conv.weight)
            conv.weight.copy_(w)
            b_c = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            bn.bias.copy_(b_f - (b_c - bn.running_mean) * inv)
            done.update({f"{conv_path}.weight", f"{conv_path}.bias"})
            done.update(f"{bn_path}.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                   "num_batches_tracked"))
        for k, v in state.items():
            if k in done or k not in own or own[k].shape != v.shape:
                continue
            if own[k].is_floating_point():
                own[k].copy_(v)
    return out


CKPT_FORMAT = "flexiq-finetune-checkpoint"


def _ckpt_key(steps, lr, seed, ratios) -> dict:
    return {"format": CKPT_FORMAT, "steps": int(steps), "lr": float(lr), "seed": int(seed),
            "ratios": [float(r) for r in ratios]}


def _save_ckpt(path, steps, lr, seed, ratios, fq, opt, gen, history) -> None:
    """Everything a resumed run needs to end exactly as an uninterrupted one, atomically."""
    state = dict(_ckpt_key(steps, lr, seed, ratios), weights=fq.gm.state_dict(),
                 optimizer=opt.state_dict(), generator=gen.bit_generator.state, history=history)
    tmp = f"{path}.tmp.{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_ckpt(path, steps, lr, seed, ratios):
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, weights_only=False)
    except Exception as exc:
        raise ConfigError(f"finetune checkpoint {path!r} cannot be read: {exc}") from exc
    key = _ckpt_key(steps, lr, seed, ratios)
    if not isinstance(state, dict) or any(state.get(k) != v for k, v in key.items()):
        raise ConfigError(f"finetune checkpoint {path!r} belongs to another run (steps, lr, seed "
                          "or ratios differ); delete it to start over")
    return state


def _xy(item):
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        return item[0], item[1]
    x = item[0] if isinstance(item, (tuple, list)) else item
    return x, None


def finetune_float(qmodel, train_data, *, model: nn.Module | None = None, selection=None,
                   ratios=None, steps: int | str | None = "auto", epochs: int = 1, lr: float | None = None,
                   batch_size: int | str | None = "auto", loss: str = "auto",
                   weight_decay: float = 0.0, alpha: float = 1.0, temperature: float = 1.0,
                   seed: int = 0, progress: bool = True, checkpoint=None,
                   save_every: int = 10) -> FinetuneResult:
    """The training loop; returns the finetuned float model (see ``finetune``)."""
    if loss not in ("auto", "ce", "distill"):
        raise ConfigError(f"loss must be 'auto', 'ce' or 'distill', got {loss!r}")
    auto_batch, auto_steps = auto_budget(qmodel)
    if batch_size == "auto":
        batch_size = auto_batch
    if steps == "auto":
        steps = auto_steps
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        train_data = _rebatch(train_data, int(batch_size))
    if lr is None:  # distillation on a few unlabelled photos drifts at the labelled rate
        first = next(iter(train_data), None)
        labelled = first is not None and _xy(first)[1] is not None
        lr = LR_DISTILL if (loss == "distill" or (loss == "auto" and not labelled)) else LR_LABELLED
    if selection is None:
        selection = getattr(qmodel, "selection", None)
    if ratios is None:
        ratios = [r for r in (selection.ratios if selection is not None else (0.25, 0.5, 0.75, 1.0)) if r > 0]
    ratios = [float(r) for r in ratios]
    if not ratios:
        raise ConfigError("finetune needs at least one nonzero ratio for the student")
    gen = np.random.default_rng(seed)
    torch.manual_seed(seed)
    fq = FakeQuantModel(qmodel, trainable=True)
    frozen = FakeQuantModel(qmodel)  # pseudo-labels for unlabelled batches: the original 8 bits
    plans = _plans(qmodel, selection, ratios)
    eight = {name: (np.asarray(L.order), 0) for name, L in qmodel.layers.items()}
    params = [p for p in fq.gm.parameters() if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    history = []
    skip = 0
    if steps is not None and checkpoint:
        saved = _load_ckpt(checkpoint, steps, lr, seed, ratios)
        if saved is not None:  # resume: same weights, optimizer, generator and history
            fq.gm.load_state_dict(saved["weights"])
            opt.load_state_dict(saved["optimizer"])
            gen.bit_generator.state = saved["generator"]
            history = list(saved["history"])
            skip = len(history)
    T = float(temperature)
    bar = tqdm(total=steps, desc="finetune", disable=not progress, leave=False, initial=skip)
    for _ in range(1 if steps is not None else int(epochs)):
        for item in itertools.islice(_batches(train_data, steps), skip, None):
            x, y = _xy(item)
            x = torch.as_tensor(x).float()
            mode = loss if loss != "auto" else ("ce" if y is not None else "distill")
            with torch.no_grad():
                ref = frozen(x, plan=eight) if (y is None or mode == "distill") else None
            if y is None:
                y = ref.argmax(-1)
            r = ratios[int(gen.integers(len(ratios)))]
            t_logits = fq(x, plan=eight)
            s_logits = fq(x, plan=plans[r])
            if mode == "distill":  # no labels needed: both paths follow the original 8 bits
                target = F.softmax(ref / T, dim=-1)
                kl8 = F.kl_div(F.log_softmax(t_logits / T, dim=-1), target, reduction="batchmean") * T * T
                kl = F.kl_div(F.log_softmax(s_logits / T, dim=-1), target, reduction="batchmean") * T * T
                total = kl8 + alpha * kl
                rec = {"kl8": float(kl8.detach())}
            else:
                ce8 = F.cross_entropy(t_logits, y)
                ce4 = F.cross_entropy(s_logits, y)
                kl = F.kl_div(F.log_softmax(s_logits / T, dim=-1), F.softmax(t_logits.detach() / T, dim=-1),
                              reduction="batchmean") * T * T
                total = ce8 + ce4 + alpha * kl
                rec = {"ce8": float(ce8.detach()), "ce_mixed": float(ce4.detach())}
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            history.append(dict(rec, loss=float(total.detach()), kl=float(kl.detach()), ratio=r, mode=mode))
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]['loss']:.4f}", kl=f"{history[-1]['kl']:.4f}")
            if steps is not None and checkpoint and (len(history) % save_every == 0):
                _save_ckpt(checkpoint, steps, lr, seed, ratios, fq, opt, gen, history)
    bar.close()
    if checkpoint and os.path.isfile(checkpoint):
        os.remove(checkpoint)  # finished: the checkpoint has served
    for p in params:
        p.requires_grad_(False)
    out = unfold_into(model, fq.gm).eval() if model is not None else fq.gm
    return FinetuneResult(model=out, history=history)


def finetune(qmodel, train_data, *, model: nn.Module | None = None, calib_data=None, **kwargs):
    """Finetune for mixed precision and re-quantize: returns a new ``QuantizedModel``.

    ``train_data``: ``(x, y)`` batches, or unlabelled ``x`` batches. ``loss``: "auto"
    (default) uses the labelled loss below for ``(x, y)`` batches and distillation for
    unlabelled ones; "distill": both the 8-bit and the mixed path are trained towards the
    softmax of the original (frozen) 8-bit model, ``KL(p8 || 8-bit) + alpha KL(p8 || mixed)``,
    no labels needed; "ce": cross-entropies plus the mixed-to-8-bit KL (the original 8-bit
    model's top-1 as the label for unlabelled batches). ``steps``/``batch_size`` "auto":
    ``auto_budget`` (sized by the model's MACs, so a big model gets small batches and fewer
    steps). ``model``: the float model ``qmodel`` came from;
    given, the result is written back into its architecture (``.finetune_result.model``,
    storable as its state dict); otherwise the trained BatchNorm-folded graph is
    re-quantized. ``calib_data`` (default: the inputs of ``train_data``) recalibrates the
    activation scales. The selection attached to ``qmodel`` (or ``selection=``) is attached
    to the result, and its ratio is restored. Other keywords: see ``finetune_float``
    (``steps`` (None = ``epochs`` passes), ``batch_size`` (None: as given), ``lr`` (default
    1e-4 with labels, 1e-5 for distillation),
    ``alpha``, ``temperature``, ``ratios``, ``seed``, ``progress``, ``checkpoint``: a file
    written atomically every ``save_every`` steps and resumed from, removed at the end).
    """
    from .quantize import quantize

    res = finetune_float(qmodel, train_data, model=model, **kwargs)
    if calib_data is None:
        calib_data = [_xy(item)[0] for item in train_data]
    qm = quantize(res.model, calib_data, qmodel.config, progress=False)
    sel = kwargs.get("selection") or getattr(qmodel, "selection", None)
    if sel is not None:
        qm.attach_selection(sel)
    else:
        for name, L in qm.layers.items():  # keep the original priority orders
            if name in qmodel.layers:
                L.order = qmodel.layers[name].order.copy()
    qm.set_ratio(getattr(qmodel, "ratio", 0.0))
    qm.finetune_result = res
    return qm
