"""Flags that several subcommands share."""
from __future__ import annotations


def add_no_download(p) -> None:
    """``--no-download``, the same for every command that reads a data set: a missing data set
    is then a one-line error naming the folders searched, instead of a download."""
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never download missing data")
