"""`flexiq sweep MODEL --ratios 0,0.25,0.5,0.75,1 [--method M ...] -o DIR`: accuracy and cycles
per 4-bit ratio in DIR/sweep.csv and DIR/sweep.json (resumable). MODEL is any model reference
(experiments/model_ref.py); rows carry its name."""

from __future__ import annotations


def add_common(p) -> None:
    from experiments.commands.model_args import add_model_args

    p.add_argument("--ratios", default="0,0.25,0.5,0.75,1",
                   help="comma-separated 4-bit ratios (0 and 1 are always added)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluation images (default: the whole test set)")
    p.add_argument("--batch", type=int, default=256,
                   help="evaluation batch size, at most (large inputs run in batches of about 1 M values)")
    p.add_argument("--calib-images", type=int, default=256, help="calibration images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-images", type=int, default=2,
                   help="images per ratio compared bit for bit with the simulator")
    p.add_argument("--sim-images", type=int, default=0,
                   help="take accuracy from simulator outputs of this many images")
    p.add_argument("--no-sim", action="store_true",
                   help="skip compiling and simulating (no cycles)")
    p.add_argument("--random-weights", action="store_true",
                   help="use random weights (for models without shipped weights)")
    p.add_argument("--weights", default=None,
                   help="load this state dict (or `flexiq train` state.pt) instead of the shipped weights")
    p.add_argument("--synthetic-data", action="store_true",
                   help="seeded noise instead of real data (tests; accuracy meaningless); "
                        "the same as --calib-data synthetic")
    p.add_argument("--arch", help="registry architecture for a state-dict checkpoint")
    add_model_args(p, positional=False)
    p.add_argument("--population", type=int, default=None, help="evolutionary search population")
    p.add_argument("--generations", type=int, default=None, help="evolutionary search generations")
    p.add_argument("--npu-config", default=None, help="NPU configuration TOML")
    p.add_argument("--fresh", action="store_true", help="discard this model's earlier rows")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub) -> None:
    from experiments.commands.model_args import MODEL_HELP

    p = sub.add_parser("sweep", help="accuracy + simulated cycles per 4-bit ratio (CSV/JSON table)")
    p.add_argument("name", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--method", "--methods", dest="methods", action="append", default=None,
                   help="method(s), repeatable or comma-separated (default: all baselines and "
                        "FlexiQ selections): uniform_int4 (naive MSB at 100 %%), naive_msb, "
                        "hawq, range, random, greedy, evolutionary; also int4_ptq (uniform INT4 "
                        "PTQ from FP32, by name only); append +ft for finetuned")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--plot", action="store_true", help="also write the trade-off plot")
    add_common(p)
    p.set_defaults(func=run)


def resolve(args):
    """(ModelRef, DataSource) of the MODEL argument; calibration and evaluation share the
    source (``--calib-data``; ``--synthetic-data`` is ``synthetic``)."""
    from experiments.commands.model_args import resolve_args
    from quant.errors import ConfigError

    if args.synthetic_data:
        if args.calib_data not in ("auto", "synthetic"):
            raise ConfigError("--synthetic-data and --calib-data name different data")
        args.calib_data = "synthetic"
    return resolve_args(args, dest="name", weights=args.weights)


def note_unlabelled(rows, echo=print) -> None:
    if rows and all(r.get("accuracy") is None for r in rows):
        echo(f"note: {rows[0].get('eval_set')} has no labels: accuracy is empty; agree_8bit and "
             "kl_8bit give the fidelity to the 8-bit model")


def options_from_args(args, methods=None, source=None):
    from experiments import methods as M
    from experiments.sweep import SweepOptions, parse_ratios

    if methods is None:
        methods = []
        for m in args.methods or [",".join(M.DEFAULT_METHODS)]:
            methods += [t.strip() for t in m.split(",") if t.strip()]
    search = {}
    if args.population is not None:
        search["population"] = args.population
    if args.generations is not None:
        search["generations"] = args.generations
    npu = None
    if args.npu_config:
        from npu_sim import NPUConfig

        npu = NPUConfig.from_toml(args.npu_config).to_dict()
    return SweepOptions(
        ratios=parse_ratios(args.ratios), methods=methods, limit=args.limit, batch=args.batch,
        calib_images=args.calib_images, seed=args.seed, check_images=args.check_images,
        sim_images=args.sim_images, simulate=not args.no_sim,
        pretrained=not args.random_weights, weights=args.weights,
        data=source.key if source is not None else ("synthetic" if args.synthetic_data else "auto"),
        search=search, npu_config=npu,
        quant_base={"group_size": npu["group_size"]} if npu else {},
        progress=not args.quiet, fresh=args.fresh)


def run(args) -> int:
    from experiments.sweep import run_sweep
    from experiments.sweep_table import format_table

    ref, source = resolve(args)
    table = run_sweep(ref.name, args.out, options_from_args(args, source=source),
                      model=ref.module, data=source)
    rows = [r for r in table.table() if r["model"] == ref.name]
    print(format_table(rows))
    note_unlabelled(rows)
    import os

    from experiments.io import write_text
    from experiments.sweep_table import summary_markdown

    summary = os.path.join(args.out, f"summary_{ref.name}.md")
    write_text(summary, summary_markdown(ref.name, rows))
    print(f"table: {table.csv_path}\n       {table.json_path}\nsummary: {summary}")
    if args.plot:
        from experiments.plotting import plot_sweep

        for path in plot_sweep(table.table(), args.out):
            print(f"plot:  {path}")
    return 0
