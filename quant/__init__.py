"""FlexiQ quantization: the integer contract (docs/numeric_contract.md) and the quantized-model runtime."""

from numeric.extraction import bits_for_range, lower4, shift_for_range  # noqa: F401
from numeric.rounding import quantize_multiplier, requantize, rshift_rne  # noqa: F401

from .config import QuantConfig  # noqa: F401,E402
from .errors import (  # noqa: F401
    AccumulatorOverflowError,
    CalibrationError,
    ConfigError,
    DataMissingError,
    FlexiQError,
    ModelError,
    UnsupportedOpError,
)
from .mixed_conv import mixed_conv2d  # noqa: F401
from .mixed_gemm import ShiftPlan, mixed_gemm, mixed_linear, plan_shifts  # noqa: F401
from .quantize import quantize  # noqa: F401,E402
from .runtime import QTensor, QuantizedModel  # noqa: F401,E402
from .select import Selection, select  # noqa: F401,E402
