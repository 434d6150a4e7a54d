"""`flexiq compile MODEL -o PROG`: quantize, (select), compile to an NPU program.

MODEL is any model reference (experiments/model_ref.py); its calibration data comes from
``--calib-data`` (experiments/data_source.py). The program carries the model's name.
"""

from __future__ import annotations

import os

from quant.errors import ConfigError


def register(sub) -> None:
    from experiments.commands.model_args import add_model_args

    p = sub.add_parser("compile", help="quantize a model and compile it to an NPU program")
    add_model_args(p)
    p.add_argument("-o", "--output", required=True, help="program file to write (.npz)")
    p.add_argument("--arch", help="registry architecture for a state-dict checkpoint")
    p.add_argument("--random-weights", action="store_true",
                   help="use random weights (cycle studies of models without shipped weights)")
    p.add_argument("--selection", help="selection JSON from `flexiq select` (default: a "
                                       "range-priority selection made here for --ratios)")
    p.add_argument("--ratios", default=None, help="ratios to tabulate max4 for (default: the "
                                                  "selection's ladder, or 0,0.25,0.5,0.75,1)")
    p.add_argument("--batch", type=int, default=1, help="batch size the program is built for")
    p.add_argument("--calib", type=int, default=256, help="calibration images")
    p.add_argument("--extraction", default="effective", choices=["effective", "naive"])
    p.add_argument("--dynamic", action="store_true", help="dynamic (per-image) extraction")
    p.add_argument("--weight-shift", default="group", choices=["group", "weight"])
    p.add_argument("--npu-config", help="NPU configuration TOML")
    p.add_argument("--topology-csv", metavar="FILE",
                   help="also write the model's conv/linear layers as a SCALE-Sim topology "
                        "(one image; see docs/scalesim.md)")
    p.set_defaults(func=run)


def parse_ratios(text: str) -> list[float]:
    try:
        rs = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--ratios must be comma-separated numbers, got {text!r}") from None
    bad = [r for r in rs if not 0 <= r <= 1]
    if not rs or bad:
        raise ConfigError(f"--ratios must lie in [0, 1], got {text!r}")
    return rs


def run(args) -> int:
    import numpy as np
    import torch

    import compiler
    import quant
    from experiments.commands.model_args import resolve_args
    from npu_sim import NPUConfig

    sel = quant.Selection.load(args.selection) if args.selection else None
    ratios = parse_ratios(args.ratios) if args.ratios else (
        list(sel.ratios) if sel else [0.0, 0.25, 0.5, 0.75, 1.0])
    cfg = NPUConfig.from_toml(args.npu_config) if args.npu_config else NPUConfig()
    ref, source = resolve_args(args, random_fallback=True)
    calib = source.calibration(args.calib)
    qcfg = quant.QuantConfig(extraction=args.extraction, dynamic=args.dynamic,
                             weight_shift=args.weight_shift, group_size=cfg.group_size)
    qm = quant.quantize(ref.module, calib, qcfg)
    eligible = any(L.selectable for L in qm.layers.values())
    if sel is None and eligible:  # ratios must mean something: range priority over them
        sel = quant.select(qm, calib, method="range", ratios=ratios, progress=False)
        print(f"note: no --selection given: using range priority for ratios "
              f"{', '.join(f'{r:g}' for r in sel.ratios)} (4-bit MAC shares)")
    elif sel is None:
        print("note: no layer of this model can run 4-bit input channels (first layer, heads "
              "and depthwise convs stay 8-bit): every ratio runs in 8 bits")
    if sel is not None:
        qm.attach_selection(sel)
    example = torch.cat(calib)[: args.batch]
    if len(example) < args.batch:
        raise ConfigError(f"--batch {args.batch}: the calibration data has only {len(example)} samples")
    prog = compiler.compile(qm, example, config=cfg, ratios=ratios, name=ref.name)
    if sel is not None:
        prog.meta["selection"] = {"method": sel.method,
                                  "ratios": [float(r) for r in sel.ratios], "file": args.selection}
    prog.meta["model_ref"] = {"spec": str(args.model), "kind": ref.kind,
                              "input_shape": list(ref.input_shape), "calib_data": source.key}
    prog.meta["example_input"] = np.asarray(compiler.encode_input(prog, example)).tolist() \
        if example.numel() <= 4096 else None
    topology = None
    if args.topology_csv:  # built before anything is written: a refusal leaves no files
        from experiments.scalesim import topology_text
        from experiments.scalesim.export import model_topology

        topology = topology_text(model_topology(ref.module, example))
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    prog.save(args.output)
    if topology is not None:
        from experiments.io import write_text

        write_text(args.topology_csv, topology)
        print(f"wrote {args.topology_csv}: SCALE-Sim topology (run with -i conv)")
    print(f"wrote {args.output} (model {ref.name}): {len(prog.instructions)} instructions, "
          f"{len(prog.max4_regs)} mixed-precision layers, ratios {sorted(prog.max4_tables, key=float)}")
    return 0
