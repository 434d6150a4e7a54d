"""`flexiq pipeline MODEL -o DIR`: the README's main job (calibrate -> select -> compile ->
simulate -> sweep -> plot) on one model (any model reference, experiments/model_ref.py),
printing where the table and the plot are."""

from __future__ import annotations


def register(sub) -> None:
    from experiments.commands.sweep import add_common

    p = sub.add_parser("pipeline", help="the main job end to end: sweep all methods and plot")
    from experiments.commands.model_args import MODEL_HELP

    p.add_argument("name", metavar="MODEL", help=MODEL_HELP + " (e.g. resnet20_fmnist)")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument("--method", "--methods", dest="methods", action="append", default=None,
                   help="methods (default: all baselines and FlexiQ selections)")
    add_common(p)
    p.set_defaults(func=run, limit=500)


def run(args) -> int:
    from experiments.commands.sweep import options_from_args, resolve
    from experiments.pipeline import PIPELINE_SEARCH, run_pipeline

    ref, source = resolve(args)
    opts = options_from_args(args, source=source)
    opts.search = {**PIPELINE_SEARCH, **opts.search}
    run_pipeline(ref.name, args.out, opts, model=ref.module, data=source)
    return 0
