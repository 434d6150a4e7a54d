"""Compile a quantized model and run it on the simulated NPU at a ratio.

The max4 registers are written from the same quantized model's table for the ratio
(``qmodel.max4_for_ratio``) when the program names its registers after the layers, so the
simulated program and the integer runtime use one 4-bit set; otherwise from the program's
own table for that ratio.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from quant.errors import FlexiQError


def compiler_available() -> bool:
    try:
        import compiler
        import npu_sim
    except ImportError:
        return False
    return callable(getattr(compiler, "compile", None)) and callable(getattr(npu_sim, "simulate", None))


def require_compiler() -> None:
    if not compiler_available():
        raise FlexiQError("compiler.compile / npu_sim.simulate are not available in this checkout; "
                          "cycles cannot be simulated")


def compile_program(qmodel, example_input, *, ratios=None, config=None, path=None,
                    name: str = "model"):
    """``compiler.compile`` (passing ``ratios`` if it takes them); cached at ``path``."""
    import compiler
    from npu_sim import Program

    if path and os.path.exists(path):
        from npu_sim import ProgramFileError

        try:
            return Program.load(path)
        except ProgramFileError as e:  # damaged, or from an older version: build it again
            print(f"note: recompiling {path}: {e}")
    kwargs = {"config": config}
    params = inspect.signature(compiler.compile).parameters
    if ratios is not None and "ratios" in params:
        kwargs["ratios"] = list(ratios)
    if "name" in params:
        kwargs["name"] = name
    prog = compiler.compile(qmodel, example_input, **kwargs)
    if path:
        from .io import atomic_path

        with atomic_path(path) as tmp:
            prog.save(tmp)
    return prog


def max4_list(program, qmodel, ratio):
    """Register values for ``ratio`` from the quantized model, or None if names differ."""
    table = qmodel.max4_for_ratio(ratio)
    regs = list(program.max4_regs)
    if regs and all(r in table for r in regs):
        return [int(table[r]) for r in regs]
    return None


def simulate(program, qmodel, x, ratio, *, config=None):
    """One simulated run of ``x`` (batch as compiled) at ``ratio``."""
    import npu_sim

    regs = max4_list(program, qmodel, ratio)
    if regs is not None:
        return npu_sim.simulate(program, x_input(program, x), max4=regs, config=config)
    return npu_sim.simulate(program, x_input(program, x), ratio=ratio, config=config)


def timing_run(machine, qmodel, ratio, *, trace: bool = False):
    """One timing-only run (``Machine.run(values=False)``) of ``machine`` at ``ratio``: the
    full simulation's cycles, stalls, per-layer table and statistics without output values
    (and without trace events unless ``trace``). The max4 registers come from ``qmodel``'s
    table, as in ``simulate``."""
    regs = max4_list(machine.program, qmodel, ratio) if qmodel is not None else None
    if regs is not None:
        machine.set_max4(regs)
    else:
        machine.set_ratio(ratio)
    return machine.run(values=False, trace=trace)


def timing(program, qmodel, ratios, *, config=None) -> dict:
    """``{ratio: SimResult}`` of timing-only runs on one machine (validated once)."""
    import npu_sim

    machine = npu_sim.Machine(program, config)
    return {r: timing_run(machine, qmodel, r) for r in ratios}


def x_input(program, x):
    """Float NCHW input -> the program's input codes (``compiler.encode_input``)."""
    from compiler import encode_input

    return encode_input(program, x)


def output_codes(result, program=None) -> np.ndarray:
    """The output codes in the logical layout of the model's output."""
    out = result.output if len(result.outputs) == 1 else next(iter(result.outputs.values()))
    out = np.asarray(out).astype(np.int64)
    shape = (program.meta.get("output") or {}).get("shape") if program is not None else None
    return out.reshape(shape) if shape else out


def reorder_cycles(result) -> int:
    by_op = (result.stats or {}).get("by_op", {})
    return int(by_op.get("REORDER", {}).get("cycles", 0))


#: op kinds of the cycle breakdown (sweep columns ``cyc_<kind>``)
BREAKDOWN = ("depthwise", "pointwise", "conv", "fc", "vector", "reorder", "dma")


def layer_kind(layer) -> str:
    """depthwise (grouped conv), pointwise (1x1 dense conv), conv (other dense), fc (Linear)."""
    if layer.kind == "linear":
        return "fc"
    if layer.groups != 1:
        return "depthwise"
    return "pointwise" if tuple(layer.kernel) == (1, 1) else "conv"


def cycle_breakdown(result, qmodel) -> dict:
    """Busy cycles of one simulated run per op kind: the compute-queue (PE array) cycles of
    each GEMM kind, vector-unit cycles other than REORDER, REORDER, and DMA (load + store
    queues). The queues overlap in time, so these add up to more than ``cycles``."""
    out = {f"cyc_{k}": 0 for k in BREAKDOWN}
    for ly in result.layers:
        gemm = qmodel.layers.get(ly["name"])
        if gemm is not None:
            out[f"cyc_{layer_kind(gemm)}"] += int(ly.get("compute", 0))
        out["cyc_vector"] += int(ly.get("vector", 0))
        out["cyc_dma"] += int(ly.get("load", 0)) + int(ly.get("store", 0))
    stats = result.stats or {}
    reorder = reorder_cycles(result)
    out["cyc_reorder"] = reorder
    out["cyc_vector"] = max(0, int(stats.get("by_queue", {}).get("vector", {}).get("busy", 0)) - reorder)
    queues = stats.get("by_queue", {})
    if queues:
        out["cyc_dma"] = int(queues.get("load", {}).get("busy", 0)) + int(queues.get("store", {}).get("busy", 0))
    return out
