"""`flexiq simulate PROG --ratio R`: run a compiled program on the cycle-level NPU."""

from __future__ import annotations

import json

import numpy as np

from quant.errors import ConfigError


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a compiled program at a 4-bit ratio")
    p.add_argument("program", help="program file from `flexiq compile`")
    p.add_argument("--ratio", type=float, default=0.0, help="4-bit ratio (a tabulated one)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", help="write a Chrome/Perfetto trace JSON here")
    p.add_argument("--mode", default="fast", choices=["fast", "exact"],
                   help="PE array model: tile-level (fast) or every PE every cycle (exact)")
    p.add_argument("--input", help=".npy of float model input (default: the compile-time example)")
    p.add_argument("--top", type=int, default=20, help="layers to list in the text report")
    p.set_defaults(func=run)


#: Version of the `--json` object (docs/file_formats.md); raised when a field changes meaning.
JSON_FORMAT_VERSION = 1


def summarize(prog, res, ratio) -> dict:
    """The report of one run: totals, REORDER share, per-layer cycles."""
    reorder = set(prog.meta.get("reorder_layers", []))
    layers = [{"name": d["name"], "cycles": int(d["cycles"]), "folds": int(d.get("folds", 0)),
               "folds4": int(d.get("folds4", 0))} for d in res.layers]
    re_cycles = sum(d["cycles"] for d in layers
                    if d["name"] in reorder or d["name"].startswith("reorder_"))
    return {
        "format_version": JSON_FORMAT_VERSION,
        "model": prog.meta.get("model"),
        "ratio": ratio,
        "total_cycles": int(res.cycles),
        "latency_us": float(res.latency_us),
        "switch_cycles": int(res.switch_cycles),
        "array_utilization": float(res.stats.get("array_utilization", 0.0)),
        "reorder_cycles": int(re_cycles),
        "reorder_share": re_cycles / res.cycles if res.cycles else 0.0,
        "dram_bytes": int(res.stats.get("dram_read_bytes", 0) + res.stats.get("dram_write_bytes", 0)),
        "layers": layers,
    }


def run(args) -> int:
    import npu_sim

    prog = npu_sim.Program.load(args.program)
    if args.input:  # float model input (encoded by simulate) or integer codes
        from experiments.args import load_input_array

        x = load_input_array(args.input)
    elif prog.meta.get("example_input") is not None:
        x = np.asarray(prog.meta["example_input"])
    else:
        shape = prog.region(prog.inputs[0]).array.shape
        x = np.zeros(shape, dtype=np.int64)
    if not 0 <= args.ratio <= 1:
        raise ConfigError(f"--ratio must lie in [0, 1], got {args.ratio}")
    if args.trace:
        from experiments.args import check_output_file

        check_output_file(args.trace, "--trace")
    res = npu_sim.simulate(prog, x, ratio=args.ratio, mode=args.mode)
    rep = summarize(prog, res, args.ratio)
    if args.trace:
        res.write_trace(args.trace)
    if args.json:
        print(json.dumps(rep))
        return 0
    print(f"model {rep['model']}  ratio {args.ratio:g}  total {rep['total_cycles']:,} cycles  "
          f"latency {rep['latency_us']:.2f} us  utilization {rep['array_utilization']:.1%}  "
          f"REORDER share {rep['reorder_share']:.1%}  ratio switch {rep['switch_cycles']} cycles")
    top = sorted(rep["layers"], key=lambda d: -d["cycles"])[: args.top]
    print(f"{'layer':<40} {'cycles':>12} {'share':>7} {'folds':>7} {'4-bit':>6}")
    for d in top:
        print(f"{d['name']:<40} {d['cycles']:>12,} {d['cycles'] / rep['total_cycles']:>7.1%} "
              f"{d['folds']:>7} {d['folds4']:>6}")
    if args.trace:
        print(f"trace written to {args.trace} (open in https://ui.perfetto.dev or chrome://tracing)")
    return 0
