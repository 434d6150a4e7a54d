"""`flexiq pipeline MODEL -o DIR`: the README's main job (calibrate -> select -> compile ->
simulate -> sweep -> plot) on one model, printing where the table and the plot are."""

from __future__ import annotations


def register(sub) -> None:
    from experiments.commands.sweep import add_common

    p = sub.add_parser("pipeline", help="the main job end to end: sweep all methods and plot")
    p.add_argument("name", help="registry model name (e.g. resnet20_fmnist)")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--method", "--methods", dest="methods", action="append", default=None,
                   help="methods (default: all baselines and FlexiQ selections)")
    add_common(p)
    p.set_defaults(func=run, limit=500)


def run(args) -> int:
    from experiments.commands.sweep import options_from_args
    from experiments.pipeline import PIPELINE_SEARCH, run_pipeline

    opts = options_from_args(args)
    opts.search = {**PIPELINE_SEARCH, **opts.search}
    run_pipeline(args.name, args.out, opts)
    return 0
