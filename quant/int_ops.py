"""Integer semantics of the non-GEMM ops: ``numeric.int_ops``, re-exported."""

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
