"""SCALE-Sim's report files, same names, headers and row layout.

``COMPUTE_REPORT.csv``, ``BANDWIDTH_REPORT.csv`` and ``DETAILED_ACCESS_REPORT.csv`` go to
``<outdir>/<run_name>/`` as SCALE-Sim writes them. Fields that depend on SCALE-Sim's DRAM
buffer model (``Total Cycles (incl. prefetch)``, the DRAM bandwidths, the DRAM start/stop
cycles and access counts) are left empty; every other field is filled. Each file is written
atomically, after every layer has been counted.
"""

from __future__ import annotations

import os

from experiments.io import write_text

COMPUTE_HEADER = ("LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, "
                  "Overall Util %, Mapping Efficiency %, Compute Util %,")
BANDWIDTH_HEADER = ("LayerID, Avg IFMAP SRAM BW, Avg FILTER SRAM BW, Avg OFMAP SRAM BW, "
                    "Avg IFMAP DRAM BW, Avg FILTER DRAM BW, Avg OFMAP DRAM BW,")
DETAIL_HEADER = ", ".join(
    ["LayerID"]
    + [f"SRAM {b} {f}" for b, op in (("IFMAP", "Reads"), ("Filter", "Reads"), ("OFMAP", "Writes"))
       for f in ("Start Cycle", "Stop Cycle", op)]
    + [f"DRAM {b} {f}" for b, op in (("IFMAP", "Reads"), ("Filter", "Reads"), ("OFMAP", "Writes"))
       for f in ("Start Cycle", "Stop Cycle", op)]) + ","

EMPTY = ""


def _row(lid, items) -> str:
    return f"{lid}, " + ", ".join(str(x) for x in items) + ","


def compute_report(reports) -> str:
    rows = [COMPUTE_HEADER]
    rows += [_row(i, [EMPTY, r.total_cycles, r.stall_cycles, r.overall_util, r.mapping_eff,
                      r.compute_util]) for i, r in enumerate(reports)]
    return "\n".join(rows) + "\n"


def bandwidth_report(reports) -> str:
    rows = [BANDWIDTH_HEADER]
    rows += [_row(i, [r.avg_ifmap_sram_bw, r.avg_filter_sram_bw, r.avg_ofmap_sram_bw,
                      EMPTY, EMPTY, EMPTY]) for i, r in enumerate(reports)]
    return "\n".join(rows) + "\n"


def detail_report(reports) -> str:
    rows = [DETAIL_HEADER]
    rows += [_row(i, [float(r.ifmap_sram_start), float(r.ifmap_sram_stop), r.ifmap_sram_reads,
                      float(r.filter_sram_start), float(r.filter_sram_stop),
                      r.filter_sram_reads,
                      float(r.ofmap_sram_start), float(r.ofmap_sram_stop), r.ofmap_sram_writes]
                  + [EMPTY] * 9) for i, r in enumerate(reports)]
    return "\n".join(rows) + "\n"


def write_reports(outdir, run_name: str, reports) -> str:
    """Write the three reports under ``outdir/run_name``; returns that folder."""
    folder = os.path.join(os.fspath(outdir), run_name)
    texts = {"COMPUTE_REPORT.csv": compute_report(reports),
             "BANDWIDTH_REPORT.csv": bandwidth_report(reports),
             "DETAILED_ACCESS_REPORT.csv": detail_report(reports)}
    for name, text in texts.items():
        write_text(os.path.join(folder, name), text)
    return folder
