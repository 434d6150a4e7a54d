"""Errors the project raises for bad input. Each message says what was wrong and where."""

from __future__ import annotations


class FlexiQError(ValueError):
    """Base class: a user-facing error with a clear message."""


class ConfigError(FlexiQError):
    """A configuration field has a bad value (the message names the field)."""


class UnsupportedOpError(FlexiQError):
    """A model contains an op the quantizer or compiler cannot handle."""


class CalibrationError(FlexiQError):
    """Calibration could not run (empty data, non-finite values, ...)."""


class AccumulatorOverflowError(FlexiQError, OverflowError):
    """An integer accumulator left the int32 range; names the layer."""


class DataMissingError(FlexiQError, FileNotFoundError):
    """A data set or checkpoint is not installed; says how to install it."""


class ModelError(FlexiQError):
    """The model itself is unusable (e.g. non-finite weights)."""


class InputError(FlexiQError):
    """An input tensor or input file is unusable (wrong shape, layout, dtype, NaN, ...)."""


class RatioError(ConfigError):
    """A 4-bit ratio the model or program cannot honour (lists the ratios it can)."""


class RatioWarning(UserWarning):
    """A 4-bit ratio that changes nothing (no selection, and the uniform rule gives no
    layer a whole 4-bit group)."""


class SelectionFileError(ConfigError):
    """A selection file is malformed or was made for another model or configuration."""


class OutputPathError(FlexiQError):
    """An output path cannot be written (checked before any work starts)."""
