"""One model reference for every command: ``resolve(spec, ...)`` -> ``ModelRef``.

A reference is one of

* a registry name (``flexiq info`` lists them): the model, its input shape and its data set;
* ``path/to/file.py:factory``: the file is imported and ``factory()`` must return the
  ``nn.Module``;
* a ``torch.export`` program (``.pt2``) or an ONNX file (``.onnx``), see
  ``experiments/foreign_models.py``;
* a ``.pt`` file holding a whole pickled module, or a state dict of a registry
  architecture named with ``arch``.

A user model (anything but a registry name) needs its per-sample input shape (``C,H,W``;
``.pt2`` and ONNX files record one) and names its programs, selections and table rows
after itself: the factory's name or the file's stem, unless ``name`` is given.
Every bad reference raises a ``FlexiQError`` with one line saying what is wrong.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass

import torch
from torch import nn

from quant.errors import ConfigError, DataMissingError, FlexiQError, ModelError


@dataclass
class ModelRef:
    name: str  # label of programs, selections and table rows
    module: nn.Module  # eval mode
    input_shape: tuple  # one sample, without the batch axis
    registry: str | None = None  # registry name whose data set the model uses, if any
    kind: str = "registry"  # registry | python | export | onnx | pickle | state_dict

    def example(self, batch: int = 1, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, *self.input_shape, generator=g)


def parse_input_shape(text) -> tuple | None:
    """``"3,32,32"`` (or ``3x32x32``) -> ``(3, 32, 32)``; None stays None."""
    if text is None or isinstance(text, tuple):
        return text
    t = re.sub(r"\s+", "", str(text))
    # numbers joined by single separators: "3,x" or "3,,32" is a typo, not a shorter shape
    shape = tuple(int(p) for p in re.split(r"[,x]", t)) if re.fullmatch(r"\d+([,x]\d+)*", t) \
        else ()
    if not shape or any(s <= 0 for s in shape) or len(shape) > 4:
        raise ConfigError(f"--input-shape must be 1 to 4 positive integers per sample "
                          f"(e.g. 3,32,32), got {text!r}")
    return shape


_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(name: str) -> str:
    if not _NAME_OK.match(name or "") or "__" in name:
        raise ConfigError(f"--name must be letters, digits, '_', '-', '.' (no '__'), got {name!r}")
    return name


def load_registry_model(name: str, *, pretrained: bool = True, weights: str | None = None):
    """A registry model with its shipped weights, random ones, or the state dict in ``weights``
    (a plain state dict or a ``flexiq train`` state holding one under ``"model"``)."""
    import models

    if not weights:
        return models.get(name, pretrained=pretrained)
    if not os.path.exists(weights):
        raise DataMissingError(f"weights file {weights} does not exist")
    state = torch.load(weights, map_location="cpu", weights_only=False)
    return _load_state(models.get(name, pretrained=False), state, weights, name)


def _load_state(model, state, where, arch):
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a `flexiq train` state file
    if not isinstance(state, dict):
        raise ModelError(f"{where} holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise FlexiQError(f"{where} does not fit {arch}: {str(e).strip().splitlines()[0]}") from None
    return model.eval()


def _registry(spec, input_shape, random_weights, weights, random_fallback=False):
    import models

    info = models.info(spec)
    shape = (info["channels"], info["input_size"], info["input_size"])
    if input_shape is not None and tuple(input_shape) != shape:
        raise ConfigError(f"--input-shape {','.join(map(str, input_shape))} does not match "
                          f"{spec}'s input {','.join(map(str, shape))}")
    pretrained = not random_weights
    if pretrained and not weights and not info.get("pretrained_available", True):
        if random_fallback:
            print(f"note: {spec} has no weights installed; using random weights (cycles only)")
            return load_registry_model(spec, pretrained=False), shape
        raise DataMissingError(f"{spec} has no weights installed here; pass --random-weights "
                               "for cycle studies")
    return load_registry_model(spec, pretrained=pretrained, weights=weights), shape


def _import_factory(path: str, factory: str) -> nn.Module:
    mod_name = "flexiq_user_" + re.sub(r"\W", "_", os.path.abspath(path))
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[mod_name]
        raise ModelError(f"{path}: importing it failed: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    fn = getattr(module, factory, None)
    if fn is None:
        have = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                      and getattr(v, "__module__", None) == mod_name)
        raise ModelError(f"{path}: no factory named {factory!r} (callables there: "
                         f"{', '.join(have) or 'none'})")
    if not callable(fn):
        raise ModelError(f"{path}:{factory} is not callable")
    try:
        model = fn()
    except Exception as exc:
        raise ModelError(f"{path}:{factory}() failed: {type(exc).__name__}: "
                         f"{_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{path}:{factory}() returned {type(model).__name__}, "
                         "not a torch.nn.Module")
    return model


def _pickle(path, arch, random_weights):
    import models

    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{path}: not a torch.save file ({_first_line(exc)}); give a "
                         ".py file as path.py:factory, a .pt2 or an .onnx file") from None
    if isinstance(obj, nn.Module):
        return obj, "pickle"
    if not arch:
        raise ConfigError(f"{path} holds a state dict: name its registry architecture with --arch "
                          "(or give the model as path.py:factory)")
    return _load_state(models.get(arch, pretrained=False), obj, path, arch), "state_dict"


def resolve(spec: str, *, input_shape=None, name: str | None = None, arch: str | None = None,
            random_weights: bool = False, weights: str | None = None,
            random_fallback: bool = False) -> ModelRef:
    """The module, label, input shape and registry entry (if any) of a model reference."""
    import models

    spec = str(spec)
    input_shape = parse_input_shape(input_shape)
    if name is not None:
        check_name(name)
    if spec in models.names():
        module, shape = _registry(spec, input_shape, random_weights, weights,
                                  random_fallback)
        return _checked(ModelRef(name or spec, module.eval(), shape, spec, "registry"), spec)
    if weights:
        raise ConfigError("--weights applies to registry models only")
    path, factory = spec, None
    m = re.match(r"^(.*\.py):([A-Za-z_]\w*)$", spec)
    if m:
        path, factory = m.group(1), m.group(2)
    elif spec.endswith(".py") or re.match(r"^.*\.py:", spec):
        raise ConfigError(f"a Python model is given as path/to/file.py:factory, got {spec!r}")
    if not os.path.exists(path):
        looks_like_file = os.sep in spec or "." in spec
        raise (DataMissingError if looks_like_file else ConfigError)(
            f"model {spec!r}: " + ("no such file" if looks_like_file else
                                  f"not a registry name ({', '.join(models.names())}) "
                                  "and not a file"))
    if os.path.isdir(path):
        raise ConfigError(f"model {spec!r} is a directory, not a model file")
    stem = os.path.splitext(os.path.basename(path))[0]
    recorded = None
    registry = None
    if factory:
        module, kind, label = _import_factory(path, factory), "python", factory
    elif path.endswith(".pt2"):
        from .foreign_models import exported_input_shape, load_exported

        module, kind, label = load_exported(path), "export", stem
        recorded = exported_input_shape(path)
    elif path.endswith(".onnx"):
        from .foreign_models import load_onnx, onnx_input_shape

        module, kind, label = load_onnx(path), "onnx", stem
        recorded = onnx_input_shape(path)
    else:
        module, kind = _pickle(path, arch, random_weights)
        label = stem
        if kind == "state_dict":
            registry = arch
            recorded = parse_input_shape(",".join(map(str, _registry_shape(arch))))
    shape = input_shape or recorded
    if shape is None:
        raise ConfigError(f"model {spec!r}: give its per-sample input shape with --input-shape "
                          "(e.g. 3,32,32)")
    if recorded is not None and input_shape is not None and kind in ("export", "onnx") \
            and tuple(input_shape) != tuple(recorded):
        raise ConfigError(f"--input-shape {','.join(map(str, input_shape))} differs from the "
                          f"shape {','.join(map(str, recorded))} recorded in {path}")
    return _checked(ModelRef(check_name(name or _safe(label)), module.eval(), tuple(shape),
                             registry, kind), spec)


def _registry_shape(arch):
    import models

    info = models.info(arch)
    return info["channels"], info["input_size"], info["input_size"]


def _safe(label: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", label).strip("_.") or "model"
    return re.sub(r"_{2,}", "_", s)


def _checked(ref: ModelRef, spec: str) -> ModelRef:
    """Run the model once on a zero batch of its input shape: one line if that fails."""
    x = torch.zeros(2, *ref.input_shape)
    try:
        with torch.no_grad():
            y = ref.module(x)
    except Exception as exc:
        raise ModelError(f"model {spec!r} does not run on input shape "
                         f"{','.join(map(str, ref.input_shape))}: {_first_line(exc)}") from None
    if not isinstance(y, torch.Tensor):
        raise ModelError(f"model {spec!r} returns a {type(y).__name__}; the NPU compiler takes "
                         "a model returning one tensor")
    return ref


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
