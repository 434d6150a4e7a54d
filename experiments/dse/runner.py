"""`flexiq dse`: expand the space into (configuration, model) jobs, run the ones the table
does not hold yet on a backend, add each job's rows as it finishes (atomic saves), plot.

An invalid configuration gets its rows (``status="invalid"`` with the reason) without
running; a job that fails in its worker (the worker died, an unexpected error) is reported
and left out of the table, so a rerun runs exactly the missing jobs.
"""

from __future__ import annotations

import os
import time

from .backends import make_backend
from .job import Job, run_job
from .pareto import plot
from .space import Space
from .table import DSETable


def jobs_of(space: Space, *, seed: int = 0, calib_images: int = 2, fidelity_images: int = 0):
    """(jobs to run, rows of invalid points) for every point x model."""
    jobs, invalid = [], []
    ratios = tuple(space.ratios)
    for p in space.points:
        for m in space.models:
            if p.config is None:
                invalid += [dict({"config_id": p.config_id, "model": m, **p.knobs},
                                 ratio=r, status="invalid", reason=p.error,
                                 is_default=p.config_id == space.default_id) for r in ratios]
                continue
            jobs.append(Job(p.config_id, dict(p.knobs), p.config.to_dict(), m, ratios, seed,
                            calib_images, tuple(sorted(p.quant.items())), fidelity_images))
    return jobs, invalid


def run_dse(space: Space, out_dir, *, backend: str = "local", workers: int | None = None,
            ray_address: str | None = None, seed: int = 0, calib_images: int = 2,
            progress: bool = True, fn=run_job, plot_front: bool = True,
            fidelity_images: int = 256, save_every: float = 1.0) -> dict:
    """Run the sweep into ``out_dir``; returns a summary (rows, ran, skipped, failed).
    ``fidelity_images``: evaluation images for the fidelity columns, used only when a swept
    knob changes the numerics (0: never). The table is saved (atomically) at most every
    ``save_every`` seconds while jobs finish, and at the end or on an interruption."""
    from tqdm.auto import tqdm

    knobs = list(dict.fromkeys(k for p in space.points for k in p.knobs))
    table = DSETable(out_dir, knobs)
    jobs, invalid = jobs_of(space, seed=seed, calib_images=calib_images,
                            fidelity_images=fidelity_images if space.numeric else 0)
    table.add(r for r in invalid if (r["config_id"], r["model"], f"{r['ratio']:g}")
              not in table.rows)
    todo = [j for j in jobs if not table.has_job(j.config_id, j.model, j.ratios)]
    # grouped by model: a worker prepares (quantizes) each model about once
    todo.sort(key=lambda j: (j.model, j.config_id))
    failed = []
    table.save()
    if todo:
        be = make_backend(backend, workers=workers, address=ray_address)
        bar = tqdm(total=len(todo), desc="dse", unit="job", disable=not progress)
        saved = time.monotonic()
        try:
            for job, rows, err in be.run(fn, todo):
                if err is not None:
                    failed.append((job, err))
                else:
                    for r in rows:
                        r["is_default"] = job.config_id == space.default_id
                    table.add(rows)
                    if time.monotonic() - saved >= save_every:
                        table.save()
                        saved = time.monotonic()
                bar.update(1)
        finally:  # also when interrupted: every finished row is kept
            table.save()
            bar.close()
            be.close()
    table.save()
    rows = table.sorted_rows()
    plots = []
    if plot_front and any(r["status"] == "ok" for r in rows):
        for m in sorted({r["model"] for r in rows if r["status"] == "ok"}):
            plots.append(plot(rows, os.path.join(table.dir, f"pareto_{m}.png"), model=m))
    return {"rows": rows, "ran": len(todo) - len(failed), "skipped": len(jobs) - len(todo),
            "failed": failed, "csv": table.csv, "plots": plots,
            "invalid_points": sum(1 for p in space.points if p.config is None)}
