"""A SCALE-Sim drop-in: SCALE-Sim's input formats in, its report files out.

``read_config`` reads a SCALE-Sim INI configuration, ``read_topology`` a conv or GEMM
topology CSV, ``simulate`` counts every layer with the weight-stationary fold model of
``npu_sim.folds`` and ``write_reports`` writes ``COMPUTE_REPORT.csv`` and the bandwidth and
access reports in SCALE-Sim's column layout. ``model_topology`` exports a torch model's conv
and linear layers as a topology. See docs/scalesim.md.
"""

from .config import ScaleSimConfig, UnsupportedScaleSimError, read_config  # noqa: F401
from .model import LayerReport, layer_report, simulate  # noqa: F401
from .reports import write_reports  # noqa: F401
from .topology import Layer, read_topology, topology_text, write_topology  # noqa: F401
