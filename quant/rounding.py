"""Integer rounding primitives: ``numeric.rounding`` and ``numeric.ranges``, re-exported."""

from numeric.ranges import INT32_MAX, INT32_MIN, code_range  # noqa: F401
from numeric.rounding import quantize_float, quantize_multiplier, requantize, rshift_rne  # noqa: F401
