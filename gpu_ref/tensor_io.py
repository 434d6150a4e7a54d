"""Input/output conventions of the gpu_ref entry points.

Inputs may be torch tensors, numpy arrays or nested lists. The computation runs on
``device`` if given, else on the device of the first torch tensor among the inputs, else
on the CPU. The result is a torch int64 tensor on that device when any input was a torch
tensor, and a numpy int64 array otherwise (numpy in, numpy out).
"""

from __future__ import annotations

import numpy as np
import torch


def pick_device(*arrays, device=None) -> tuple[torch.device, bool]:
    """``(compute device, return numpy?)`` for a call on ``arrays``."""
    tensors = [a for a in arrays if isinstance(a, torch.Tensor)]
    if device is not None:
        dev = torch.device(device)
    elif tensors:
        dev = tensors[0].device
    else:
        dev = torch.device("cpu")
    return dev, not tensors


def as_int64(a, device: torch.device) -> torch.Tensor:
    """``a`` as an int64 tensor on ``device`` (float values are truncated, as numpy's astype)."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(device=device, dtype=torch.int64)
    return torch.as_tensor(np.asarray(a).astype(np.int64), device=device)


def finish(t: torch.Tensor, as_numpy: bool):
    return t.cpu().numpy() if as_numpy else t
