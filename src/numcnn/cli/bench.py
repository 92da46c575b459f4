"""``numcnn bench``: the flags of the benchmark; the harness is :mod:`numcnn.bench`."""
from __future__ import annotations

import argparse

from ..validation import positive_float, positive_int


def add_arguments(p) -> None:
    p.add_argument("--repeat", type=positive_int, default=15, help="timed runs per block (median per block)")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="blocks per library and case, alternating (the fastest block counts)")
    p.add_argument("--quick", action="store_true",
                   help="only the LeNet conv cases, pools and steps; no MNIST epoch")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--naive", action="store_true", help="only: reference loops vs vectorized kernel")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory table (one fresh process per library and case)")
    p.add_argument("--memory-budget", type=positive_float, default=None, metavar="MIB",
                   help="cap numcnn's im2col buffer at MIB MiB (numcnn.ops.engine.COLS_BUDGET_BYTES;"
                        " bigger batches run in chunks) in the memory probes and every numcnn "
                        "timing, to show the memory/speed trade-off")
    p.add_argument("--no-epoch", action="store_true",
                   help="skip timing one full MNIST epoch of numcnn train")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="time numcnn against PyTorch CPU (and the naive loops)")
    add_arguments(p)
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from .. import bench

    return bench.run(args)


def main(argv=None) -> int:
    """The benchmark on its own (``bench/run.py``, :func:`numcnn.bench.main`)."""
    from .. import bench

    parser = argparse.ArgumentParser(description=bench.__doc__.splitlines()[0])
    add_arguments(parser)
    return bench.run(parser.parse_args(argv))
