"""Float values <-> a program's input and output codes (the program's meta says how)."""

from __future__ import annotations

import numpy as np
import torch

from quant.rounding import quantize_float

from .errors import CompileError
from .memory import to_phys


def encode_input(program, x) -> np.ndarray:
    """Float model input -> the program's input codes (physical layout)."""
    meta = program.meta["input"]
    x = np.asarray(torch.as_tensor(x).detach().float().numpy())
    if list(x.shape) != meta["shape"]:
        raise CompileError(f"input shape {list(x.shape)} != the program's {meta['shape']}")
    return to_phys(quantize_float(x, meta["scale"], meta["signed"]), None, meta.get("fmap", False))


def decode_output(program, codes) -> np.ndarray:
    """The program's output codes -> float values (logical layout)."""
    meta = program.meta["output"]
    return np.asarray(codes, dtype=np.float64).reshape(meta["shape"]) * meta["scale"]
