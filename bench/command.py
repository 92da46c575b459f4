"""The flags of the benchmark and its run: what ``python bench/run.py``, ``make bench`` and
``numcnn bench`` share."""
from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from bench.naive import format_naive, naive_speedup
from bench.results import json_path, write_result
from bench.suite import run_all
from bench.timing import Timer
from numcnn.errors import UserError, WriteError, report
from numcnn.validation import positive_float, positive_int

DESCRIPTION = ("Time numcnn against PyTorch CPU case by case, then peak memory, MyGrad, one MNIST "
               "epoch and the naive loops, and compare with the kernels' targets.")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    p.add_argument("--repeat", type=positive_int, default=15,
                   help="timed runs per block (median per block)")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="blocks per library and case, alternating (the fastest block counts)")
    p.add_argument("--quick", action="store_true",
                   help="only the LeNet conv cases, pools and steps; no MNIST epoch")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--naive", action="store_true",
                   help="only: reference loops vs vectorized kernel")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory table (one fresh process per library and case)")
    p.add_argument("--memory-budget", type=positive_float, default=None, metavar="MIB",
                   help="cap numcnn's im2col buffer at MIB MiB (numcnn.ops.engine."
                        "COLS_BUDGET_BYTES; bigger batches run in chunks) in the memory probes "
                        "and every numcnn timing, to show the memory/speed trade-off")
    p.add_argument("--no-epoch", action="store_true",
                   help="skip timing one full MNIST epoch of numcnn train")
    p.add_argument("--json", type=json_path, default=None, metavar="FILE",
                   help="also write the results to FILE, atomically; an existing FILE must be "
                        "an earlier result and FILE's folder writable, or the run is refused "
                        "before it starts")
    return p


def run(args: argparse.Namespace, timer: Timer | None = None) -> int:
    """Run what ``args`` ask for with ``timer`` (the real clock by default)."""
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        print("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set and slow NumPy's BLAS; "
              "unset both for this command (make bench does)")
    timer = Timer(rounds=args.rounds) if timer is None else timer
    if args.naive:
        result = naive_speedup(timer)
        print(format_naive(result))
    else:
        result = run_all(args, timer)
    if args.json:
        write_result(args.json, result)
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Parse ``argv`` (flag errors exit with status 2, before anything runs) and run; a file
    that cannot be written ends with one ``numcnn: error:`` line and status 1."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run(args)
    except (UserError, WriteError) as err:
        report(err)
        return 1
