"""The one shared float implementation of LayerNorm, softmax and GELU: ``numeric.float_ops``."""

from numeric.float_ops import float_gelu, gelu, layernorm, softmax  # noqa: F401
