"""One DSE job in a worker: a model on one NPU configuration, timing-only, every ratio.

The quantized model and its compiler graph depend on the model, G and the seed, not on
the NPU configuration, so a worker keeps them (``prepared``) and each configuration only
compiles (tiling, scheduling) and runs the timing-only simulation per ratio. Models get
seeded random weights and seeded random calibration images at their registry input size
(cycles do not depend on values).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from quant.errors import FlexiQError

_PREPARED: dict = {}


@dataclass(frozen=True)
class Job:
    """``knobs`` of the point (the table's columns), its configuration as a dict, the model."""

    config_id: str
    knobs: dict
    config: dict
    model: str
    ratios: tuple
    seed: int = 0
    calib_images: int = 2

    @property
    def key(self) -> tuple:
        return (self.config_id, self.model)


def prepared(model: str, group_size: int, seed: int, calib_images: int):
    """(quantized model, example input, compiler graph), made once per worker and key."""
    key = (model, group_size, seed, calib_images)
    if key not in _PREPARED:
        import torch

        import compiler
        import models as zoo
        import quant

        _PREPARED.clear()  # one model at a time: the big ones take GBs
        torch.manual_seed(seed)
        net = zoo.get(model, pretrained=False)
        x = zoo.example_input(model, batch=calib_images, seed=seed)
        qm = quant.quantize(net, [x], quant.QuantConfig(group_size=group_size), progress=False)
        _PREPARED[key] = (qm, x[:1], compiler.build_graph(qm, x[:1]))
    return _PREPARED[key]


def area_proxy(cfg) -> dict:
    """The documented area proxy: PE count and on-chip SRAM KiB (docs/dse.md)."""
    return {"pe_count": cfg.rows * cfg.cols,
            "sram_kib": cfg.inp_kib + cfg.wgt_kib + cfg.acc_kib + cfg.param_kib}


def _limit_threads() -> None:
    """One BLAS / OpenMP thread per worker (workers are the parallelism)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)


def run_job(job: Job) -> list[dict]:
    """Rows of one job, one per ratio; an invalid combination (the compiler cannot tile it,
    the machine rejects it) gives one row per ratio with ``status="invalid"`` and the reason."""
    _limit_threads()
    import compiler
    import npu_sim
    from experiments import npu_run

    cfg = npu_sim.NPUConfig.from_dict(job.config)
    base = {"config_id": job.config_id, "model": job.model, **job.knobs, **area_proxy(cfg)}
    t0 = time.perf_counter()
    try:
        qm, x, graph = prepared(job.model, cfg.group_size, job.seed, job.calib_images)
        t1 = time.perf_counter()
        prog = compiler.compile(qm, x, config=cfg, ratios=list(job.ratios), name=job.model,
                                graph=graph)
        machine = npu_sim.Machine(prog, cfg)
        results = {r: npu_run.timing_run(machine, qm, r) for r in job.ratios}
    except FlexiQError as e:
        return [dict(base, ratio=r, status="invalid", reason=f"{type(e).__name__}: {e}")
                for r in job.ratios]
    seconds = time.perf_counter() - t1
    rows = []
    for r, res in results.items():
        st = res.stats
        reorder = npu_run.reorder_cycles(res)
        rows.append(dict(
            base, ratio=r, status="ok", reason="", cycles=res.cycles,
            latency_us=res.latency_us, utilization=st["array_utilization"],
            dram_bytes=st["dram_read_bytes"] + st["dram_write_bytes"],
            sram_bytes=sum(st["sram_read_bytes"].values()) + sum(st["sram_write_bytes"].values()),
            reorder_share=reorder / res.cycles if res.cycles else 0.0,
            switch_cycles=res.switch_cycles, instructions=len(prog.instructions),
            job_seconds=seconds, prepare_seconds=t1 - t0))
    return rows
