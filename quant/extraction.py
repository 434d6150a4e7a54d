"""Effective bit extraction: ``numeric.extraction`` (and the group spans of
``numeric.ranges``), re-exported."""

from numeric.extraction import (  # noqa: F401
    EXTRACTIONS,
    WEIGHT_SHIFTS,
    bits_for_range,
    lower4,
    saturation_count,
    shift_for_range,
    weight_elem_shifts,
    weight_group_shifts,
)
from numeric.ranges import group_bounds  # noqa: F401
from numeric.rounding import rshift_rne  # noqa: F401
