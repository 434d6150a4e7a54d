"""One DSE job in a worker: a model on one NPU configuration, timing-only, every ratio.

The quantized model and its compiler graph depend on the model, the quantization (G, the
shift granularity, the extraction) and the seed, not on the NPU configuration, so a worker
keeps them (``prepared``) and each configuration only compiles (tiling, scheduling) and runs
the timing-only simulation per ratio. For cycles, models get seeded random weights and
seeded random calibration images at their registry input size (cycles do not depend on
values); when the sweep changes the numerics, the model's own weights and data give the
fidelity of the integer runtime (agreement and KL with 8-bit) per ratio.
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
    quant: tuple = ()          # QuantConfig fields as sorted (name, value) pairs
    fidelity_images: int = 0   # > 0: the model's weights and data, fidelity per ratio

    @property
    def key(self) -> tuple:
        return (self.config_id, self.model)


class Prepared:
    """What a worker keeps per model and quantization: the quantized model, the example
    input, the compiler graph, and the fidelity per ratio (when asked for)."""

    def __init__(self, qm, x, graph, fidelity=None, note=""):
        self.qm, self.x, self.graph = qm, x, graph
        self.fidelity = fidelity or {}
        self.note = note


def _fidelity(qm, x, ratios) -> dict:
    """{ratio: (agreement with 8-bit, mean KL to 8-bit)} of the integer runtime on ``x``."""
    from experiments import metrics
    from experiments.sweep import _run_logits

    qm.set_ratio(0.0)
    ref8, _ = _run_logits(qm, x, 64, "8-bit", False)
    out = {}
    for r in ratios:
        qm.set_ratio(r)
        logits, _ = _run_logits(qm, x, 64, f"{r:g}", False)
        out[float(r)] = (metrics.agreement(logits, ref8), metrics.mean_kl(logits, ref8))
    qm.set_ratio(0.0)
    return out


def prepared(model: str, quant: tuple, seed: int, calib_images: int, fidelity_images: int = 0,
             ratios=()) -> Prepared:
    """Made once per worker and key. Cycles need no real values: seeded random weights and
    ``calib_images`` seeded random images. With ``fidelity_images``, the model's own weights
    are calibrated on its calibration data and the fidelity measured on that many evaluation
    images (random weights and a note when the model has no weights here)."""
    key = (model, quant, seed, calib_images, fidelity_images, tuple(ratios))
    if key not in _PREPARED:
        import torch

        import compiler
        import models as zoo
        import quant as q

        _PREPARED.clear()  # one model at a time: the big ones take GBs
        qcfg = q.QuantConfig(**dict(quant))
        x = zoo.example_input(model, batch=calib_images, seed=seed)
        net, calib, note = None, [x], ""
        if fidelity_images:
            from experiments import data

            try:
                net = zoo.get(model, pretrained=True)
                calib = data.calibration_batches(model, 256, seed=seed)
                ev = data.evaluation_set(model, limit=fidelity_images, seed=seed).x
                x = ev[:calib_images]
            except FlexiQError as e:
                net, calib, note = None, [x], f"no fidelity: {e}"
        if net is None:
            torch.manual_seed(seed)
            net = zoo.get(model, pretrained=False)
        qm = q.quantize(net, calib, qcfg, progress=False)
        fid = _fidelity(qm, ev, ratios) if fidelity_images and not note else {}
        _PREPARED[key] = Prepared(qm, x[:1], compiler.build_graph(qm, x[:1]), fid, note)
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
        prep = prepared(job.model, job.quant, job.seed, job.calib_images, job.fidelity_images,
                        job.ratios)
        qm, x, graph = prep.qm, prep.x, prep.graph
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
            sram_use_kib=sum(st["sram_high_water_bytes"].values()) / 1024,
            reorder_share=reorder / res.cycles if res.cycles else 0.0,
            switch_cycles=res.switch_cycles, instructions=len(prog.instructions),
            agree_8bit=prep.fidelity.get(float(r), (None, None))[0],
            kl_8bit=prep.fidelity.get(float(r), (None, None))[1],
            fidelity_note=prep.note, job_seconds=seconds, prepare_seconds=t1 - t0))
    return rows
