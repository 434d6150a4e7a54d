"""Compiler errors (user-facing, FlexiQError subclasses)."""

from quant.errors import FlexiQError, UnsupportedOpError  # noqa: F401


class TilingError(FlexiQError):
    """A layer's shape cannot be tiled into an on-chip buffer (names the layer and buffer)."""


class CompileError(FlexiQError):
    """The compiler could not lower a node (names the node and where it came from)."""
