"""`flexiq cycles -o DIR [--models ...]`: the paper-scale cycle study (224x224, random
weights): cycles per 4-bit ratio, table + plot, resumable."""

from __future__ import annotations

import os


def register(sub) -> None:
    from experiments.paper_cycles import PAPER_MODELS

    p = sub.add_parser("cycles", help="paper-scale models at 224: simulated cycles per ratio")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--models", default=",".join(PAPER_MODELS),
                   help="comma-separated registry names (default: the paper's nine)")
    p.add_argument("--ratios", default="0,0.25,0.5,0.75,1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--npu-config", default=None, help="NPU configuration TOML")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments.paper_cycles import run_paper_cycles
    from experiments.sweep import parse_ratios
    from experiments.sweep_table import format_table

    cfg = None
    if args.npu_config:
        from npu_sim import NPUConfig

        cfg = NPUConfig.from_toml(args.npu_config)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    table = run_paper_cycles(args.out, models, parse_ratios(args.ratios), seed=args.seed,
                             npu_config=cfg, progress=not args.quiet)
    print(format_table(table, ("model", "ratio", "cycles", "latency_us", "speedup",
                               "speedup_share", "reorder_share", "mac4_share")))
    print(f"table: {os.path.join(args.out, 'paper_cycles.csv')}")
    print(f"plot:  {os.path.join(args.out, 'paper_cycles.png')}")
    return 0
