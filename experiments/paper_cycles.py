"""Paper-scale cycle study: the FlexiQ paper's ImageNet models at 224x224, cycles per ratio.

Cycles do not depend on the weights' values, so each model is built with seeded random
weights, calibrated on a few seeded random images, quantized with the default channel
priority and per-layer ratio rule, compiled once, and run at batch 1 at every ratio with
the simulator's timing-only path (``Machine.run(values=False)``: the full simulation's
cycles and statistics without computing values).
Rows go to ``DIR/paper_cycles.csv`` (atomically, one per (model, ratio)); a rerun skips the
rows already there; ``DIR/paper_cycles.png`` plots them.
"""

from __future__ import annotations

import os
import time

import torch

from . import io, npu_run
from .sweep_table import add_derived, ratio_key, sort_rows

PAPER_MODELS = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "vit_s_16", "vit_b_16",
                "deit_s", "deit_b", "swin_t")
COLUMNS = ["model", "method", "ratio", "cycles", "latency_us", "speedup", "speedup_share",
           "reorder_share", "reorder_cycles", "mac4_share", "gemm_macs", "instructions",
           "sim_seconds", "clock_ghz"]


def _load(path) -> dict:
    rows = {}
    for raw in io.read_csv(path):
        r = {k: (None if v == "" else v) for k, v in raw.items()}
        for k in ("ratio", "reorder_share", "mac4_share", "sim_seconds", "clock_ghz"):
            if r.get(k) is not None:
                r[k] = float(r[k])
        for k in ("cycles", "reorder_cycles", "gemm_macs", "instructions"):
            if r.get(k) is not None:
                r[k] = int(float(r[k]))
        rows[(r["model"], ratio_key(r["ratio"]))] = r
    return rows


def _write(path, rows: dict) -> list:
    table = sort_rows(add_derived(list(rows.values())))
    io.write_csv(path, table, COLUMNS)
    io.write_json(os.path.splitext(path)[0] + ".json", {"columns": COLUMNS, "rows": table})
    return table


def run_paper_cycles(out_dir, models=PAPER_MODELS, ratios=(0.0, 0.25, 0.5, 0.75, 1.0), *,
                     calib_images: int = 2, seed: int = 0, npu_config=None,
                     progress: bool = True, plot: bool = True) -> list:
    from tqdm.auto import tqdm

    import models as zoo
    import npu_sim
    import quant

    npu_run.require_compiler()
    ratios = sorted({float(r) for r in ratios} | {0.0, 1.0})
    path = os.path.join(os.fspath(out_dir), "paper_cycles.csv")
    rows = _load(path)
    todo = [(m, [r for r in ratios if (m, ratio_key(r)) not in rows]) for m in models]
    todo = [(m, rs) for m, rs in todo if rs]
    bar = tqdm(total=sum(len(rs) for _, rs in todo), desc="paper cycles", unit="run",
               disable=not progress)
    for name in (m for m, _ in todo):
        rs = dict(todo)[name]
        bar.set_postfix_str(f"{name}: quantize + compile")
        torch.manual_seed(seed)
        model = zoo.get(name, pretrained=False)
        x = zoo.example_input(name, batch=calib_images, seed=seed)
        g = npu_config.group_size if npu_config else 64
        qm = quant.quantize(model, [x], quant.QuantConfig(group_size=g), progress=False)
        prog = npu_run.compile_program(qm, x[:1], ratios=ratios, config=npu_config, name=name)
        macs = sum(L.macs for L in qm.layers.values())
        machine = npu_sim.Machine(prog, npu_config)  # validated once, run per ratio
        for r in rs:
            bar.set_postfix_str(f"{name} @ {r:g}")
            qm.set_ratio(r)
            t0 = time.time()
            res = npu_run.timing_run(machine, qm, r)
            reorder = npu_run.reorder_cycles(res)
            rows[(name, ratio_key(r))] = {
                "model": name, "method": "range", "ratio": r, "cycles": int(res.cycles),
                "reorder_cycles": reorder, "reorder_share": reorder / res.cycles if res.cycles else None,
                "mac4_share": qm.four_bit_mac_share(), "gemm_macs": macs,
                "instructions": len(prog.instructions), "sim_seconds": time.time() - t0,
                "clock_ghz": res.clock_ghz}
            _write(path, rows)
            bar.update(1)
        del model, qm, prog
    bar.close()
    table = _write(path, rows)
    if plot and table:
        from .plotting import plot_paper_cycles

        plot_paper_cycles(table, os.path.join(os.fspath(out_dir), "paper_cycles.png"))
    return table
