"""Integer semantics of the non-GEMM ops: ``numeric.int_ops``, re-exported (with the
rounding helpers it has always offered)."""

from numeric.int_ops import (  # noqa: F401
    act_scale,
    add,
    check_int32,
    clamp,
    gemm_epilogue_tables,
    out_clamp,
    rescale,
    sum_requant,
    two_input_multipliers,
)
from numeric.ranges import INT32_MAX, INT32_MIN, code_range  # noqa: F401
from numeric.rounding import quantize_multiplier, requantize  # noqa: F401
