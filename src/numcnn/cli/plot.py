"""``numcnn plot``: training curves, filters, feature maps and confusion matrix of a run."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .common import add_no_download


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw training curves, filters, feature maps, confusion matrix")
    p.add_argument("dir", help="a numcnn train --out folder")
    p.add_argument("--data-dir", default=None)
    add_no_download(p)
    p.set_defaults(func=cmd_plot)


def cmd_plot(args) -> int:
    from ..plots import plot_run

    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir} is not a folder")
    for path in plot_run(args.dir, args.data_dir, download=args.download):
        print(f"wrote {path}")
    return 0
