"""The `flexiq` command line.

Each subcommand lives in its own module under ``experiments/commands/`` and exposes
``register(subparsers)``; the module list below is the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules providing subcommands, in the order `flexiq --help` lists them.
COMMAND_MODULES = [
    "experiments.commands.info",
    "experiments.commands.compile",
    "experiments.commands.simulate",
    "experiments.commands.train",
    "experiments.commands.sweep",
    "experiments.commands.plot",
    "experiments.commands.pipeline",
    "experiments.commands.serve_sim",
    "experiments.commands.cycles",
    "experiments.commands.select",
    "experiments.commands.dse",
    "experiments.commands.scalesim",
]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), like every other input error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from experiments.args import add_threads_option

    parser = _Parser(
        prog="flexiq",
        description="FlexiQ-NPU: mixed 4/8-bit quantization, compiler and cycle-level NPU simulator",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for p in sub.choices.values():
        add_threads_option(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from experiments.args import apply_threads, preflight

        apply_threads(getattr(args, "threads", None), args.command)
        preflight(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # user-facing errors carry their own message
        from quant.errors import FlexiQError

        if isinstance(exc, FlexiQError):
            print(f"flexiq {args.command}: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, OSError) and exc.filename:  # a file the system refused us
            print(f"flexiq {args.command}: error: {exc.filename}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
