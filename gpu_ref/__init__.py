"""Torch/CUDA reference path of the integer contract (docs/numeric_contract.md) (bit-exact with ``quant``).

* :func:`mixed_gemm`, :func:`mixed_linear`, :func:`mixed_conv2d`: torch ops on any device
  (``torch._int_mm`` int8 GEMMs on CUDA, exact float64 GEMMs on the CPU);
* :mod:`gpu_ref.triton_mixed`: a one-launch Triton kernel for CUDA, imported only where
  both CUDA and Triton are present (:func:`triton_ready` says whether it can run).
"""

from .int_matmul import BACKENDS  # noqa: F401
from .int_ops import lower4, rshift_rne, shift_for_range  # noqa: F401
from .mixed_conv import mixed_conv2d  # noqa: F401
from .mixed_gemm import mixed_gemm, mixed_linear  # noqa: F401


def triton_ready() -> bool:
    """True when a CUDA device and an importable ``triton`` are both present."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("triton") is not None
