"""SCALE-Sim's INI configuration (``scale.cfg``), read with ``configparser``.

The fields the drop-in uses are the array shape and the dataflow; the SRAM sizes and the run
name are kept (the run name names the report folder, as in SCALE-Sim). Anything the fold
model does not cover (output/input stationary, a user DRAM bandwidth with its stalls,
sparsity) is refused with ``UnsupportedScaleSimError`` naming the file and field.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass

from quant.errors import ConfigError

DATAFLOWS = ("ws", "os", "is")


class UnsupportedScaleSimError(ConfigError):
    """A valid SCALE-Sim input asks for something the drop-in does not model."""


@dataclass(frozen=True)
class ScaleSimConfig:
    """The SCALE-Sim architecture fields the drop-in reads (SRAM sizes in KiB)."""

    run_name: str = "scale_run"
    array_rows: int = 32
    array_cols: int = 32
    ifmap_sram_kb: int = 256
    filter_sram_kb: int = 256
    ofmap_sram_kb: int = 128
    dataflow: str = "ws"
    interface_bandwidth: str = "CALC"


def _get(cp, path, section, key, default=None):
    if cp.has_option(section, key):
        return cp.get(section, key).strip()
    if default is None:
        raise ConfigError(f"{path}: missing field [{section}] {key}")
    return default


def _int(cp, path, section, key, default=None, *, positive=True):
    text = _get(cp, path, section, key, None if default is None else str(default))
    try:
        v = int(text)
    except ValueError:
        raise ConfigError(f"{path}: [{section}] {key} must be an integer, got {text!r}") from None
    if positive and v <= 0:
        raise ConfigError(f"{path}: [{section}] {key} must be > 0, got {v}")
    return v


def read_config(path) -> ScaleSimConfig:
    """Read a SCALE-Sim configuration file; ``ConfigError`` names the file and field."""
    path = os.fspath(path)
    cp = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except OSError as e:
        raise ConfigError(f"cannot read SCALE-Sim config {path}: {e.strerror}") from None
    except configparser.Error as e:
        first = str(e).splitlines()[0]
        raise ConfigError(f"{path}: not a SCALE-Sim INI file ({first})") from None
    arch = "architecture_presets"
    if not cp.has_section(arch):
        raise ConfigError(f"{path}: missing section [{arch}]")
    df = _get(cp, path, arch, "Dataflow").lower()
    if df not in DATAFLOWS:
        raise ConfigError(f"{path}: [{arch}] Dataflow must be one of {DATAFLOWS}, got {df!r}")
    if df != "ws":
        name = {"os": "output", "is": "input"}[df]
        raise UnsupportedScaleSimError(
            f"{path}: [{arch}] Dataflow = {df} ({name} stationary) is not modeled; the drop-in "
            f"counts weight-stationary arrays only (Dataflow = ws)")
    bw = _get(cp, path, "run_presets", "InterfaceBandwidth", "CALC").upper()
    if bw not in ("CALC", "USER"):
        raise ConfigError(f"{path}: [run_presets] InterfaceBandwidth must be CALC or USER, "
                          f"got {bw!r}")
    if bw == "USER":
        raise UnsupportedScaleSimError(
            f"{path}: [run_presets] InterfaceBandwidth = USER (stalls from a user DRAM "
            f"bandwidth) is not modeled; use CALC")
    if _get(cp, path, "sparsity", "SparsitySupport", "false").lower() == "true":
        raise UnsupportedScaleSimError(
            f"{path}: [sparsity] SparsitySupport = true is not modeled; set it to false")
    run_name = _get(cp, path, "general", "run_name", "scale_run")
    if not run_name or "/" in run_name or "\\" in run_name or run_name in (".", ".."):
        raise ConfigError(f"{path}: [general] run_name must be a plain folder name, got "
                          f"{run_name!r}")
    return ScaleSimConfig(
        run_name=run_name,
        array_rows=_int(cp, path, arch, "ArrayHeight"),
        array_cols=_int(cp, path, arch, "ArrayWidth"),
        ifmap_sram_kb=_int(cp, path, arch, "IfmapSramSzkB", 256),
        filter_sram_kb=_int(cp, path, arch, "FilterSramSzkB", 256),
        ofmap_sram_kb=_int(cp, path, arch, "OfmapSramSzkB", 128),
        dataflow=df,
        interface_bandwidth=bw,
    )
