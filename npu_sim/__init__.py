"""Cycle-level simulator of the FlexiQ NPU (docs/isa.md, "The machine"): values and cycles."""

from . import isa, vector_unit  # noqa: F401
from .config import NPUConfig  # noqa: F401
from .errors import (  # noqa: F401
    DeadlockError,
    DRAMAddressError,
    ISAError,
    ProgramError,
    ProgramFileError,
    SimError,
    SRAMOverflowError,
)
from .folds import fold_cycles, plan_folds, scalesim_cycles  # noqa: F401
from .gemm import GemmResult, run_conv2d, run_gemm  # noqa: F401
from .isa import QUEUES, decode_binary, decode_json, encode_binary, encode_json  # noqa: F401
from .machine import Machine, SimResult, simulate  # noqa: F401
from .program import Program  # noqa: F401
