"""The DSE table: one row per (configuration, model, ratio), saved atomically as
``DIR/dse.csv`` and ``DIR/dse.json`` after every finished job; a rerun loads it and skips
the jobs whose rows are there. Columns are documented in docs/dse.md."""

from __future__ import annotations

import os

from experiments import io

FIXED = ["config_id", "model", "ratio", "status", "reason"]
METRICS = ["cycles", "latency_us", "utilization", "dram_bytes", "sram_bytes", "sram_use_kib",
           "reorder_share", "switch_cycles", "pe_count", "sram_kib", "instructions",
           "agree_8bit", "kl_8bit", "fidelity_note", "is_default", "job_seconds",
           "prepare_seconds"]
INTS = {"cycles", "dram_bytes", "sram_bytes", "switch_cycles", "pe_count", "sram_kib",
        "instructions"}
FLOATS = {"ratio", "latency_us", "utilization", "reorder_share", "job_seconds", "sram_use_kib",
          "prepare_seconds", "agree_8bit", "kl_8bit"}


def columns(knobs) -> list:
    return FIXED[:2] + list(knobs) + FIXED[2:] + METRICS


def _parse(raw: dict) -> dict:
    from .space import _value

    r = {}
    for k, v in raw.items():
        if v == "" or v is None:
            r[k] = "" if k in ("reason", "fidelity_note") else None
        elif k in INTS:
            r[k] = int(float(v))
        elif k in FLOATS:
            r[k] = float(v)
        elif k in ("config_id", "model", "status", "reason", "fidelity_note"):
            r[k] = v
        elif k == "is_default":
            r[k] = v in ("True", "true", "1")
        else:
            r[k] = _value(v)
    return r


def row_key(row: dict) -> tuple:
    return (row["config_id"], row["model"], f"{float(row['ratio']):g}")


class DSETable:
    def __init__(self, out_dir, knobs):
        self.dir = os.fspath(out_dir)
        self.csv = os.path.join(self.dir, "dse.csv")
        self.json = os.path.join(self.dir, "dse.json")
        self.knobs = list(knobs)
        self.rows: dict = {}
        if os.path.exists(self.csv):
            for raw in io.read_csv(self.csv):
                r = _parse(raw)
                self.rows[row_key(r)] = r

    def has_job(self, config_id, model, ratios) -> bool:
        return all((config_id, model, f"{float(r):g}") in self.rows for r in ratios)

    def add(self, rows) -> None:
        """Add rows (every metric column present, None where a row has no value)."""
        for r in rows:
            self.rows[row_key(r)] = {**dict.fromkeys(METRICS), "reason": "",
                                     "fidelity_note": "", **r}

    def sorted_rows(self) -> list:
        return sorted(self.rows.values(), key=lambda r: (r["model"], r["config_id"],
                                                         float(r["ratio"])))

    def save(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        rows = self.sorted_rows()
        knobs = list(dict.fromkeys(self.knobs + [k for r in rows for k in r
                                                 if k not in FIXED + METRICS]))
        cols = columns(knobs)
        io.write_csv(self.csv, rows, cols)
        io.write_json(self.json, {"columns": cols, "rows": rows})
