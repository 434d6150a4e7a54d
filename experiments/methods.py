"""The methods a sweep compares, and how each one's quantized model is built.

A method is a quantizer configuration plus a rule for which channels run in 4 bits at each
ratio:

=================  ====================================================================
``int4_ptq``       uniform INT4 PTQ from FP32 (experiments/int4_ptq.py): 4-bit per-channel
                   weights and 4-bit activations, MSE-searched clipping; ratios 0 and 1
``uniform_int4``   "naive MSB at 100 %": the 8-bit model with every eligible channel's top
                   4 bits (naive extraction), only ratios 0 and 1 (the key keeps its old
                   name so earlier sweep tables stay valid; ``LABELS`` gives the display name)
``naive_msb``      FlexiQ range-priority selection, naive (top-4-bit) extraction
``hawq``           layer-wise mixed precision at the same MAC budget (experiments/baselines.py)
``range``          FlexiQ, default channel priority (no search)
``random``         FlexiQ selection search: random
``greedy``         FlexiQ selection search: greedy
``evolutionary``   FlexiQ selection search: evolutionary
``<method>+ft``    the same, then finetuned (quant/finetune.py)
=================  ====================================================================
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os

from quant.errors import ConfigError, FlexiQError, SelectionFileError

BASE_METHODS = ("uniform_int4", "naive_msb", "hawq", "range", "random", "greedy", "evolutionary",
                "int4_ptq")
SEARCH_METHODS = ("range", "random", "greedy", "evolutionary")
DEFAULT_METHODS = BASE_METHODS[:-1]  # int4_ptq quantizes twice: ask for it by name
ALL_OR_NOTHING = ("uniform_int4", "int4_ptq")  # measured at ratios 0 and 1 only
#: names for tables and plots
LABELS = {"uniform_int4": "naive MSB at 100 %", "int4_ptq": "uniform INT4 PTQ (from FP32)",
          "naive_msb": "naive MSB", "hawq": "layer-wise (HAWQ-style)", "range": "FlexiQ range"}


def label(method: str) -> str:
    base, ft = split(method)
    return LABELS.get(base, base) + (" +ft" if ft else "")


def split(method: str) -> tuple[str, bool]:
    if method.endswith("+ft"):
        return method[:-3], True
    return method, False


def ratio0_is_8bit(method: str) -> bool:
    """Whether ``method`` at ratio 0 is the 8-bit model as quantized: not for ``int4_ptq``
    (4-bit weights) nor for a finetuned method (finetuning moves the shared 8-bit path)."""
    base, ft = split(method)
    return base != "int4_ptq" and not ft


def validate(methods) -> list[str]:
    out = []
    for m in methods:
        base, _ = split(m)
        if base not in BASE_METHODS:
            raise ConfigError(f"unknown method {m!r}; known: {', '.join(BASE_METHODS)} "
                              "(append +ft for the finetuned variant)")
        if m not in out:
            out.append(m)
    return out


def method_ratios(method: str, ratios) -> list[float]:
    """The ratios a method is measured at (uniform INT4 has only all-8 and all-4)."""
    base, _ = split(method)
    if base in ALL_OR_NOTHING:
        return [r for r in ratios if r in (0.0, 1.0)]
    return list(ratios)


def quant_config(method: str, base_config: dict | None = None):
    from quant import QuantConfig

    d = dict(base_config or {})
    if split(method)[0] in ("uniform_int4", "naive_msb", "int4_ptq"):
        d["extraction"] = "naive"
    return QuantConfig.from_dict(d)


def _provides(module: str, name: str) -> bool:
    """Whether ``module`` imports and has a callable ``name``."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    return callable(getattr(mod, name, None))


def selection_available() -> bool:
    return _provides("quant.select", "select")


def finetune_available() -> bool:
    return _provides("quant.finetune", "finetune")


def available(methods) -> tuple[list[str], dict]:
    """Split methods into those that can run here and {method: why not} for the rest."""
    ok, skipped = [], {}
    for m in methods:
        base, ft = split(m)
        if base in ("random", "greedy", "evolutionary") and not selection_available():
            skipped[m] = "quant.select is not available"
        elif ft and not finetune_available():
            skipped[m] = "quant.finetune is not available"
        else:
            ok.append(m)
    return ok, skipped


def _call_with_known(fn, *args, **kwargs):
    """Call ``fn`` passing only the keyword arguments its signature accepts."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def _check_ladder(sel, ratios, path) -> None:
    """A saved selection answers only the ratios it was searched for: refuse a sweep that
    asks it for others (before any row is measured), naming the file."""
    missing = [float(r) for r in ratios if sel.max4_for_ratio(float(r)) is None]
    if missing:
        have = ", ".join(f"{float(r):g}" for r in sorted(sel.ratios))
        want = ", ".join(f"{r:g}" for r in missing)
        raise SelectionFileError(
            f"{path} was selected for the ratios ({have}), not {want}: sweep those ratios, or "
            "move the file (and its rows in sweep.csv) away so the sweep selects again")


def _load_selection(path):
    import json

    from .baselines import LayerwiseSelection

    with open(path, encoding="utf-8") as f:
        head = json.load(f)
    if isinstance(head, dict) and head.get("method") == "hawq" and "ranking" in head:
        return LayerwiseSelection.load(path)
    mod = importlib.import_module("quant.select")
    cls = getattr(mod, "Selection", None)
    if cls is None:
        raise FlexiQError("quant.select has no Selection class to load a saved selection")
    return cls.load(path)


def build_selection(method: str, qmodel, calib, ratios, *, seed: int = 0, search: dict | None = None,
                    progress: bool = False, checkpoint: str | None = None):
    """The selection object for ``method`` (None: the quantizer's own uniform rule)."""
    base, _ = split(method)
    if base in ALL_OR_NOTHING:
        return None
    if base == "hawq":
        from .baselines import hawq_selection

        x = __import__("torch").cat(list(calib))
        return hawq_selection(qmodel, x, ratios, progress=progress)
    sel_method = "range" if base == "naive_msb" else base
    if not selection_available():
        if sel_method == "range":
            return None  # the quantizer's default priority with its per-layer ratio rule
        raise FlexiQError(f"method {method}: quant.select is not available")
    mod = importlib.import_module("quant.select")
    kwargs = dict(search or {})
    if checkpoint and sel_method in ("greedy", "evolutionary"):
        kwargs.setdefault("checkpoint", checkpoint)  # an interrupted search resumes from here
    return _call_with_known(mod.select, qmodel, calib, method=sel_method, ratios=list(ratios),
                            seed=seed, progress=progress, **kwargs)


def prepare_qmodel(method: str, model, calib, ratios, *, seed: int = 0, search: dict | None = None,
                   quant_base: dict | None = None, cache: dict | None = None,
                   selection_path: str | None = None, progress: bool = False):
    """Quantize (cached per configuration), select, attach, and finetune if asked.

    ``cache`` maps a configuration to an already quantized model, deep-copied for reuse.
    A selection saved at ``selection_path`` is reused; a new one is saved there.
    """
    import quant

    cfg = quant_config(method, quant_base)
    key = repr(sorted(cfg.to_dict().items())) + ("int4_ptq" if split(method)[0] == "int4_ptq" else "")
    if cache is not None and key in cache:
        qm = copy.deepcopy(cache[key])
    elif split(method)[0] == "int4_ptq":
        from .int4_ptq import int4_ptq_quantize

        qm = int4_ptq_quantize(model, calib, cfg, seed=seed, progress=progress)
        if cache is not None:
            cache[key] = copy.deepcopy(qm)
    else:
        qm = quant.quantize(model, calib, cfg, progress=progress)
        if cache is not None:
            cache[key] = copy.deepcopy(qm)
    sel = None
    if selection_path and os.path.exists(selection_path):
        sel = _load_selection(selection_path)
        _check_ladder(sel, ratios, selection_path)
    else:
        ckpt = None
        if selection_path:
            os.makedirs(os.path.dirname(os.path.abspath(selection_path)), exist_ok=True)
            ckpt = selection_path[:-5] + ".search.json"
        sel = build_selection(method, qm, calib, ratios, seed=seed, search=search,
                              progress=progress, checkpoint=ckpt)
        if sel is not None and selection_path:
            sel.save(selection_path)
    if sel is not None:
        qm.attach_selection(sel)
    if split(method)[1]:
        ft = importlib.import_module("quant.finetune")
        res = _call_with_known(ft.finetune, qm, calib, seed=seed, progress=progress)
        if res is not None and hasattr(res, "set_ratio"):
            qm = res
    return qm
