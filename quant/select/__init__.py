"""Channel selection (docs/selection.md; docs/numeric_contract.md, "Nested ratios"): which input channels of
each GEMM layer run in 4 bits at each ratio. ``select(qmodel, calib_data, method=...)``
returns a ``Selection`` (JSON) that ``QuantizedModel.attach_selection`` reads.
"""

from .api import DEFAULT_RATIOS, METHODS, select
from .selection import Selection
from .space import SearchSpace

__all__ = ["DEFAULT_RATIOS", "METHODS", "SearchSpace", "Selection", "select"]
