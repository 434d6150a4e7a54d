"""`flexiq dse MODEL[,MODEL...] --grid rows=16,32 cols=16,32 ... --ratios 0,0.5,1 -o DIR`:
design-space exploration over NPU configurations (timing-only simulation), resumable,
on a local process pool or Ray. docs/dse.md."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("dse", help="design-space sweep of NPU configurations x models x ratios")
    p.add_argument("models", nargs="?", default=None,
                   help="comma-separated registry model names (or `models` in --space)")
    p.add_argument("--grid", nargs="+", default=[], metavar="KNOB=V1,V2",
                   help="values per knob (NPUConfig fields, vector_costs.OP); the grid is "
                        "their product, or what --random draws from")
    p.add_argument("--range", dest="ranges", nargs="+", default=[], metavar="KNOB=LOW:HIGH",
                   help="ranges for --random sampling")
    p.add_argument("--random", type=int, default=None, metavar="N",
                   help="draw N random points instead of the grid")
    p.add_argument("--seed", type=int, default=0, help="sampling and model seed")
    p.add_argument("--space", default=None, help="TOML file with the same space (docs/dse.md)")
    p.add_argument("--ratios", default=None, help="comma-separated 4-bit ratios (default 0,0.5,1)")
    p.add_argument("--backend", default="local", choices=("local", "ray"))
    p.add_argument("--workers", type=int, default=None,
                   help="local processes (default: CPU count) / CPUs of a local Ray instance")
    p.add_argument("--ray-address", default=None,
                   help="address of an existing Ray cluster (default: start a local one)")
    p.add_argument("--fidelity-images", type=int, default=256,
                   help="evaluation images for the fidelity columns when a swept knob changes "
                        "the numerics (group_size, weight_shift, extraction); 0: none")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments.dse.pareto import pareto_rows
    from experiments.dse.runner import run_dse
    from experiments.dse.space import SpaceError, build_space, load_toml, parse_grid, parse_ranges
    from experiments.sweep import parse_ratios
    from experiments.sweep_table import format_table

    spec = load_toml(args.space) if args.space else {}
    grid = dict(spec.get("grid", {}))
    grid.update(parse_grid(args.grid))
    ranges = dict(spec.get("ranges", {}))
    ranges.update(parse_ranges(args.ranges))
    models = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
              else list(spec.get("models", [])))
    import models as zoo

    for m in models:
        if m not in zoo.names():
            raise SpaceError(f"unknown model {m!r} (registry: {', '.join(zoo.names())})")
    ratios = (parse_ratios(args.ratios) if args.ratios
              else [float(r) for r in spec.get("ratios", [0, 0.5, 1])])
    space = build_space(models, ratios, grid=grid, ranges=ranges,
                        random_n=args.random if args.random is not None else spec.get("random"),
                        seed=args.seed if args.random is not None else spec.get("seed", args.seed),
                        base=spec.get("base"))
    out = run_dse(space, args.out, backend=args.backend, workers=args.workers,
                  ray_address=args.ray_address, seed=args.seed, progress=not args.quiet,
                  fidelity_images=args.fidelity_images)
    knobs = list(dict.fromkeys(k for p in space.points for k in p.knobs))
    cols = ("model", *knobs, "ratio", "status", "cycles", "latency_us", "reorder_share")
    if any(r.get("agree_8bit") is not None for r in out["rows"]):
        cols += ("agree_8bit",)
    rows = out["rows"]
    if len(rows) > 60:  # a big sweep: the Pareto-optimal rows only (all are in the table)
        rows = pareto_rows(rows)
        print("Pareto-optimal rows (latency vs area proxy, per model and ratio):")
    print(format_table(rows, cols))
    bad = len({r["config_id"] for r in out["rows"] if r["status"] == "invalid"})
    print(f"{len(space.points)} configurations ({bad} invalid for a model or more) x "
          f"{len(models)} models x {len(space.ratios)} ratios; jobs run {out['ran']}, "
          f"already in the table {out['skipped']}, failed {len(out['failed'])}")
    for job, err in out["failed"]:
        print(f"failed: {job.model} config {job.config_id}: {err} (rerun to complete)")
    print(f"table: {out['csv']}")
    for p in out["plots"]:
        print(f"plot:  {p}")
    return 1 if out["failed"] else 0
