"""ONNX export and import: run numcnn models elsewhere, and CNNs from elsewhere in numcnn.

* :func:`export` traces a model (``Sequential`` containers and custom ``forward`` methods
  alike) and writes an ONNX graph with a dynamic batch axis ``"N"``;
* :func:`load` rebuilds an ONNX chain of CNN operators as a :class:`numcnn.nn.Sequential`;
* :func:`add_export_parser` registers the ``numcnn export`` command.

Both need the optional ``onnx`` package (``pip install 'numcnn[onnx]'``); it is imported only
when they run, so ``import numcnn.onnx`` works without it.

Examples
--------
>>> import numpy as np
>>> from numcnn import models
>>> import numcnn.onnx
>>> model = models.lenet5().eval()
>>> numcnn.onnx.export(model, (1, 32, 32), "lenet5.onnx")      # doctest: +SKIP
>>> again = numcnn.onnx.load("lenet5.onnx")                     # doctest: +SKIP
>>> x = np.zeros((2, 1, 32, 32), dtype=np.float32)
>>> np.allclose(again(x).data, model(x).data, atol=1e-5)       # doctest: +SKIP
True
"""
from __future__ import annotations

import sys

from .export import DEFAULT_OPSET, MIN_OPSET, SUPPORTED_LAYERS, OnnxExportError, export
from .load import SUPPORTED_OPS, OnnxImportError, load

__all__ = [
    "DEFAULT_OPSET", "MIN_OPSET", "SUPPORTED_LAYERS", "SUPPORTED_OPS", "OnnxExportError",
    "OnnxImportError", "add_export_parser", "export", "load",
]


def _shape(text: str) -> tuple[int, ...]:
    import argparse

    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 1,28,28, got {text!r}")
    return shape


def _opset(text: str) -> int:
    import argparse

    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer opset, got {text!r}") from None


def add_export_parser(subparsers) -> None:
    """Register ``numcnn export CHECKPOINT OUTPUT [--opset N]`` on an argparse subparsers object.

    ``CHECKPOINT`` is a ``.npz`` checkpoint written by ``numcnn train`` or a ``.safetensors``
    file written by :func:`numcnn.io.save`. ``OUTPUT`` ending in ``.onnx`` gets an ONNX graph;
    ending in ``.safetensors``, the weights and architecture as safetensors. The handler
    (``args.func``) returns the exit status: 0, or 1 after one ``numcnn: error:`` line.
    """
    p = subparsers.add_parser(
        "export", help="write a checkpoint as ONNX (or safetensors) for other runtimes",
        description="Export a trained model: OUTPUT ending in .onnx gets an ONNX graph for "
                    "inference with a dynamic batch axis N (needs the onnx package); ending "
                    "in .safetensors, the weights and architecture as safetensors (needs the "
                    "safetensors package).")
    p.add_argument("checkpoint", help="a .npz checkpoint written by numcnn train, or a "
                                      ".safetensors file written by numcnn.io.save")
    p.add_argument("output", help="the file to write: NAME.onnx or NAME.safetensors")
    p.add_argument("--opset", type=_opset, default=DEFAULT_OPSET, metavar="N",
                   help="ONNX opset, %(default)s by default (13 or newer)")
    p.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                   help="the shape of one input image (default: the model's own input size)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="fix the batch size in the ONNX graph (default: a dynamic axis N)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating type of the ONNX graph (default: %(default)s, which every "
                        "runtime supports)")
    p.set_defaults(func=_cmd_export)


def _load_any(path: str):
    """A model from a ``.npz`` checkpoint or a ``.safetensors`` file."""
    if path.lower().endswith(".safetensors"):
        from .. import io

        return io.load(path)
    from ..train import load_model

    return load_model(path)[0]


def _cmd_export(args) -> int:
    from ..checkpoint import CheckpointError

    output = str(args.output)
    kind = output.lower().rsplit(".", 1)[-1] if "." in output else ""
    try:
        if kind not in ("onnx", "safetensors"):
            raise ValueError(f"the output {output!r} must end in .onnx or .safetensors")
        model = _load_any(str(args.checkpoint))
        if kind == "safetensors":
            from .. import io

            io.save(model, output)
            print(f"wrote {output} ({type(model).__name__}, {model.num_parameters():,} "
                  "parameters, safetensors)")
            return 0
        export(model, args.input_shape, output, opset=args.opset, batch_size=args.batch_size,
               dtype=args.dtype)
        shape = args.input_shape
        if shape is None:
            from ..models import input_size

            shape = input_size(model.arch, **model.config)
        batch = "N" if args.batch_size is None else args.batch_size
        print(f"wrote {output} ({type(model).__name__}, opset {args.opset}, {args.dtype} input "
              f"({batch}, {', '.join(map(str, shape))}))")
        return 0
    except (ImportError, OnnxExportError, CheckpointError, OSError, MemoryError,
            ValueError, TypeError, KeyError) as err:
        from ..cli import error_line

        print(f"numcnn: error: {error_line(err)}", file=sys.stderr)
        return 1
