"""Errors the project raises for bad input: the classes of ``numeric.errors``, re-exported
so every ``except quant.errors.X`` and ``isinstance`` check sees the same classes."""

from numeric.errors import (  # noqa: F401
    AccumulatorOverflowError,
    CalibrationError,
    ConfigError,
    DataMissingError,
    FlexiQError,
    InputError,
    ModelError,
    OutputPathError,
    RatioError,
    RatioWarning,
    SelectionFileError,
    UnsupportedOpError,
)
