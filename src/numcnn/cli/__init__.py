"""The ``numcnn`` command: train, eval, predict, plot, export, explain, bench.

Each subcommand's flags and handler live in a module of this package (``explain``'s in
:mod:`numcnn.explain.command`), registered in :data:`COMMANDS`: a subcommand that cannot be
imported breaks the command loudly instead of vanishing from it. The handlers import what they
run when they run, so ``numcnn --help`` stays quick.

Errors a user can cause (missing data, wrong path, unknown model, corrupt checkpoint, NaN loss)
end with one ``numcnn: error: ...`` line (:func:`numcnn.errors.error_line`) and exit status 1,
never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import REPORTED, UserError, report
from ..explain.command import add_explain_parser
from . import bench, export, plot, predict, train
from . import eval as evaluate  # the module, not the builtin
from .train import train_config

__all__ = ["COMMANDS", "EXIT_ERROR", "EXIT_INTERRUPTED", "UserError", "build_parser", "main",
           "train_config"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

#: Every subcommand, in the order of ``numcnn --help``: its name and the function that adds
#: its parser (with the handler as the parser's ``func`` default) to the subparsers.
COMMANDS = (
    ("train", train.add_parser),
    ("eval", evaluate.add_parser),
    ("predict", predict.add_parser),
    ("plot", plot.add_parser),
    ("explain", add_explain_parser),
    ("bench", bench.add_parser),
    ("export", export.add_parser),
)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="numcnn", description="Convolutional neural networks in pure NumPy.")
    parser.add_argument("--version", action="version", version=f"numcnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _, add_parser in COMMANDS:
        add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("numcnn: interrupted; the last checkpoint written is intact", file=sys.stderr)
        return EXIT_INTERRUPTED
    except REPORTED as err:
        if _reports_errors():
            report(err)
        return EXIT_ERROR


def _reports_errors() -> bool:
    """Under mpirun only rank 0 prints a setup error every rank meets: one line, not K."""
    from ..distributed import launched_rank

    return launched_rank() == 0

