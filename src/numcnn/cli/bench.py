"""``numcnn bench``: runs the benchmark harness of the source checkout this numcnn comes from.

The harness is not part of the package: it is the folder ``bench/`` of a source checkout, beside
``src/``, and an editable install (``pip install -e .``) imports numcnn from that ``src/``. The
command passes its arguments on unchanged to the harness, which owns the flags
(``numcnn bench --help`` lists them), and runs it in this process, as ``python bench/run.py``
would. An installed wheel has no harness beside it: the command then says where to run it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

from ..errors import UserError

#: numcnn's own folder: ``<checkout>/src/numcnn`` in a source checkout.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
HOW_TO_RUN = ("in a source checkout of numcnn, run `python bench/run.py` or `make bench` "
              "(same flags), or install the checkout with `pip install -e .` first")


def add_parser(sub) -> None:
    # No option of its own: with "+" as its only prefix character, every argument ("--help"
    # included) is one for the harness, passed on as it is.
    p = sub.add_parser("bench", add_help=False, prefix_chars="+",
                       help="time numcnn against PyTorch CPU (the benchmark harness of a "
                            "source checkout)")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)


def checkout_root(package_dir: Path) -> Path:
    """The source checkout that holds numcnn (found in ``package_dir``) and the harness."""
    root = package_dir.parent.parent
    if package_dir.parent.name == "src" and (root / "bench" / "command.py").is_file():
        return root
    raise UserError(f"numcnn bench runs the benchmark harness of a source checkout (its bench/ "
                    f"folder), and the numcnn imported here ({package_dir}) has none beside it: "
                    + HOW_TO_RUN)


def load_harness(root: Path) -> ModuleType:
    """``bench.command`` of the checkout at ``root``, importing the package from there."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        command = importlib.import_module("bench.command")
    except ImportError as err:
        raise UserError(f"the benchmark harness in {root / 'bench'} cannot be imported: {err}") from None
    where = Path(command.__file__ or "").resolve().parent
    if where != root / "bench":
        raise UserError(f"a module named bench from {where} stands in for the benchmark harness "
                        f"of {root / 'bench'}: " + HOW_TO_RUN)
    return command


def cmd_bench(args: argparse.Namespace) -> int:
    command = load_harness(checkout_root(PACKAGE_DIR))
    return int(command.main(args.argv, prog="numcnn bench"))
