"""`flexiq plot DIR`: accuracy-vs-cycles PNGs (one per model) from DIR/sweep.csv."""

from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("plot", help="plot accuracy vs cycles per model from a sweep directory")
    p.add_argument("dir", help="directory holding sweep.csv")
    p.add_argument("-o", "--out", default=None, help="where the PNGs go (default: DIR)")
    p.set_defaults(func=run)


def run(args) -> int:
    from experiments import io
    from experiments.plotting import plot_sweep
    from quant.errors import DataMissingError

    path = os.path.join(args.dir, "sweep.csv")
    rows = io.read_csv(path)
    if not rows:
        raise DataMissingError(f"no sweep table at {path}; run `flexiq sweep NAME -o {args.dir}` first")
    paths = plot_sweep(rows, args.out or args.dir)
    if not paths:
        raise DataMissingError(f"{path} has no rows with cycles to plot (was it run with --no-sim?)")
    for p in paths:
        print(p)
    return 0
