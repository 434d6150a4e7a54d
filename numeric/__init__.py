"""The torch-free numeric core that every path stands on (see docs/numeric_contract.md).

numpy (and scipy's ``erf`` for GELU) only: importing it loads no torch, so the NPU
simulator, the GPU path and the quant reference can all share it.

| module | what it holds |
|---|---|
| ``errors`` | the ``FlexiQError`` hierarchy (``quant.errors`` re-exports the same classes) |
| ``ranges`` | code ranges of the integer formats, int32 bounds, the 4-bit group spans |
| ``rounding`` | ``rshift_rne``, dyadic ``requantize``, ``quantize_float`` |
| ``extraction`` | bits of a range, the 4-bit shift rule, the one lowering ``lower4`` |
| ``checks`` | argument and code-range checks of mixed GEMM/conv, conv parameter pairs |
| ``ratio`` | what a 4-bit ratio means: the uniform max4 rule, ratio keys, budgets |
| ``int_ops`` | integer semantics of the non-GEMM ops |
| ``float_ops`` | the one float implementation of LayerNorm, softmax, GELU |
"""

from .checks import check_codes, check_mixed_args, int_pair, pair  # noqa: F401
from .errors import FlexiQError  # noqa: F401
from .extraction import (  # noqa: F401
    EXTRACTIONS,
    WEIGHT_SHIFTS,
    ShiftPlan,
    bits_for_range,
    lower4,
    shift_for_range,
)
from .ranges import INT32_MAX, INT32_MIN, code_range, group_bounds  # noqa: F401
from .ratio import check_ratio, max4_for_ratio, ratio_key, same_ratio  # noqa: F401
from .rounding import quantize_float, quantize_multiplier, requantize, rshift_rne  # noqa: F401
