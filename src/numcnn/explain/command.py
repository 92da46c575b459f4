"""``numcnn explain``: the command-line face of :func:`numcnn.explain.explain`.

Exit status: 0 explained; 2 the configuration cannot run (one ``numcnn: error:`` line, no
traceback); 1 ``--trace`` found a shape the code does not produce (the mismatches are listed).
"""
from __future__ import annotations

import argparse
import sys

from ..validation import positive_int

EXIT_OK, EXIT_TRACE, EXIT_INVALID = 0, 1, 2

EPILOG = """examples:
  numcnn explain lenet5 --batch 64 --backward
  numcnn explain "conv2d(3, 16, kernel_size=3, stride=2, padding=1)" --input 3x32x32 --trace
  numcnn explain "maxpool2d(3, stride=2, padding=1, ceil_mode=True)" --input 8x7x7
  numcnn explain conv2d N=2 C_in=4 C_out=6 H=7 W=6 k=3x2 s=2x1 p=1x0 d=1x2 g=2
  numcnn explain avgpool2d N=1 C=3 H=6 W=6 k=3 s=2 p=1 ceil_mode=1 count_include_pad=0
  numcnn explain "conv2d(1, 1, 3, stride=2)" --input 1x6x6 --html conv.html --values
  numcnn explain maxpool2d H=5 W=5 k=3 s=2 p=1 --html maxpool.html
  numcnn explain "ConvTranspose2d(1, 1, 3, stride=2)" --input 1x2x2 --html up.html
  numcnn explain convtranspose2d C_in=4 C_out=2 H=7 W=7 k=3 s=2 p=1 r=1"""


def add_explain_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``explain`` subcommand on an ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "explain", help="every shape, size formula, cost and gradient of a model or layer",
        description="Explain a model or one layer for a given input: per layer the input and "
                    "output shapes, the output-size arithmetic with the actual numbers, "
                    "parameters, forward/backward FLOPs and activation memory.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="a model name (lenet5, convnet), a layer spec such as "
                                  "'conv2d(3, 16, kernel_size=3, stride=2)', or conv2d / "
                                  "convtranspose2d / avgpool2d / maxpool2d followed by "
                                  "KEY=VALUE pairs")
    p.add_argument("params", nargs="*", metavar="KEY=VALUE",
                   help="one configuration, axis by axis: N C_in C_out H W k s p d g (conv; "
                        "convtranspose2d also r, its output_padding), "
                        "N C H W k s p [d] ceil_mode count_include_pad (pools); AxB = (h, w)")
    p.add_argument("--input", default=None, metavar="CxHxW",
                   help="shape of one sample, e.g. 1x28x28 (default: the model's, else "
                        "C x 28 x 28)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="batch size of the shapes, FLOPs and memory (default: 1)")
    p.add_argument("--backward", action="store_true",
                   help="also list every tensor of each layer's backward pass")
    p.add_argument("--trace", action="store_true",
                   help="run a real forward and backward pass (float64) and check every shape")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="activation dtype for the memory column (default: %(default)s)")
    p.add_argument("--values", action="store_true",
                   help="one conv, transposed conv or pooling layer on a small sample: also "
                        "print the arrays "
                        "(X_pad, Y, G, P, W_T, gX, gW) computed by numcnn's kernels")
    p.add_argument("--html", metavar="PAGE.html", default=None,
                   help="one conv, transposed conv or pooling layer: write a self-contained "
                        "interactive page "
                        "stepping through the forward, gW and gX (works offline, from file://)")
    p.set_defaults(func=run_explain)
    return p


def _explain(args) -> str:
    from . import OP_KEYS, ExplainError, explain, explain_config, explain_page, explain_values
    from .parse import parse_shape

    op = args.target.strip().lower().replace("_", "")
    if args.params or op in OP_KEYS:
        if op not in OP_KEYS:
            raise ExplainError(f"KEY=VALUE parameters go with {', '.join(OP_KEYS)}, "
                               f"not {args.target!r}")
        if args.input is not None or args.batch is not None:
            raise ExplainError("the KEY=VALUE form sets N, C, H, W itself; drop --input/--batch")
        explained = explain_config(op, args.params, trace=args.trace)
        target, shape = explained.plans[0], None
    else:
        shape = parse_shape(args.input) if args.input is not None else None
        explained = explain(args.target, shape, batch=args.batch or 1, backward=args.backward,
                            trace=args.trace, dtype=args.dtype)
        target = args.target
    text = str(explained)
    if args.values:
        text += "\n\n" + explain_values(target, shape)
    if args.html:
        data = explain_page(target, shape, args.html)
        steps = sum(max(1, len(s["cells"]) + 1) if s["cells"] else 1 for s in data["stages"])
        text += f"\n\nwrote {args.html}: {len(data['stages'])} stages, {steps} steps"
    return text


def run_explain(args, stdout=None, stderr=None) -> int:
    """Run ``numcnn explain`` for parsed ``args``; return the exit status."""
    from . import TraceError

    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    try:
        text = _explain(args)
    except TraceError as err:
        print(err.explanation, file=stdout)
        print(err, file=stderr)
        return EXIT_TRACE
    except (ValueError, TypeError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"numcnn: error: {message}", file=stderr)
        return EXIT_INVALID
    except MemoryError as err:
        print(f"numcnn: error: out of memory while explaining {args.target!r}"
              f"{' on input ' + args.input if args.input else ''}: {err or 'allocation failed'}",
              file=stderr)
        return EXIT_INVALID
    print(text, file=stdout)
    return EXIT_OK
