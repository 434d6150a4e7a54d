"""The main job: calibrate -> select -> compile -> simulate -> sweep -> plot, one command.

``run_pipeline`` is a sweep over the baselines and the FlexiQ selections (the sweep does
calibration, selection, compilation and simulation per method, resumably) followed by the
trade-off plot and a Markdown summary. Defaults keep it to a few minutes on 2 cores:
500 test images, and a small evolutionary search budget (``population``/``generations``;
raise them for paper-like searches, 50 x 50).
"""

from __future__ import annotations

import os
import time

from . import io
from . import methods as M
from .plotting import plot_sweep
from .sweep import SweepOptions, run_sweep
from .sweep_table import format_table, summary_markdown

PIPELINE_SEARCH = {"population": 8, "generations": 5}


def run_pipeline(model_name: str, out_dir, opts: SweepOptions, *, echo=print, model=None,
                 data=None) -> dict:
    """``model``/``data``: a user model and its ``DataSource`` (see ``run_sweep``)."""
    t0 = time.time()
    out_dir = os.fspath(out_dir)
    echo(f"== FlexiQ pipeline: {model_name} -> {out_dir}")
    echo(f"   methods {', '.join(opts.methods)}; ratios {', '.join(f'{r:g}' for r in opts.ratios)}; "
         f"{opts.limit or 'all'} test images; search {opts.search or 'defaults'}")
    if not M.selection_available():
        echo("   note: quant.select is not available here; FlexiQ uses the default channel "
             "priority (method 'range') and the searches are skipped")
    table = run_sweep(model_name, out_dir, opts, model=model, data=data)
    rows = [r for r in table.table() if r["model"] == model_name]
    plots = plot_sweep(rows, out_dir) if any(r.get("cycles") is not None for r in rows) else []
    note = ""
    if rows and all(r.get("accuracy") is None for r in rows):
        note = (f"\n\nNote: {rows[0].get('eval_set')} has no labels: accuracy is empty; "
                "agree_8bit and kl_8bit give the fidelity to the 8-bit model.")
    text = format_table(rows) + note
    summary = os.path.join(out_dir, "summary.md")
    io.write_text(summary, summary_markdown(model_name, rows) + note + "\n\n"
                  + "".join(f"![trade-off]({os.path.basename(p)})\n" for p in plots))
    echo(text)
    echo(f"\ntable:   {table.csv_path}\n         {table.json_path}")
    for p in plots:
        echo(f"plot:    {p}")
    echo(f"summary: {summary}\nprograms: {os.path.join(out_dir, 'programs')}  "
         f"selections: {os.path.join(out_dir, 'selections')}")
    echo(f"done in {time.time() - t0:.0f} s")
    return {"table": table.csv_path, "plots": plots, "summary": summary}
