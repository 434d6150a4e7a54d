"""The FlexiQ compiler: PyTorch model -> networkx IR -> passes -> NPU program."""

from .compile import build_graph, compile, decode_output, encode_input  # noqa: F401
from .errors import CompileError, TilingError  # noqa: F401
from .ir import build_ir  # noqa: F401
