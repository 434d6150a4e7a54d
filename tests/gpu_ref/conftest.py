"""Devices for the gpu_ref tests: "cpu" always, "cuda" marked and skipped without a GPU."""

import pytest
import torch

NO_CUDA = "needs a CUDA device (torch.cuda.is_available() is False)"

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)]),
]
