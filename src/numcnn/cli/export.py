"""``numcnn export``: a checkpoint as an ONNX graph or a safetensors file."""
from __future__ import annotations

from ..errors import UserError


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


def add_parser(subparsers) -> None:
    """Register ``numcnn export CHECKPOINT OUTPUT [--opset N]`` on an argparse subparsers object.

    ``CHECKPOINT`` is a ``.npz`` checkpoint written by ``numcnn train`` or a ``.safetensors``
    file written by :func:`numcnn.io.save`. ``OUTPUT`` ending in ``.onnx`` gets an ONNX graph;
    ending in ``.safetensors``, the weights and architecture as safetensors.
    """
    from ..onnx.export import DEFAULT_OPSET

    p = subparsers.add_parser(
        "export", help="write a checkpoint as ONNX (or safetensors) for other runtimes",
        description="Export a trained model: OUTPUT ending in .onnx gets an ONNX graph for "
                    "inference with a dynamic batch axis N (needs the onnx package); ending "
                    "in .safetensors, the weights and architecture as safetensors (needs the "
                    "safetensors package).")
    p.add_argument("checkpoint", help="a .npz checkpoint written by numcnn train, or a "
                                      ".safetensors file written by numcnn.io.save")
    p.add_argument("output", help="the file to write: NAME.onnx or NAME.safetensors")
    p.add_argument("--opset", type=_opset, default=None, metavar="N",
                   help=f"ONNX opset, {DEFAULT_OPSET} by default (13 or newer)")
    p.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                   help="the shape of one input image (default: the model's own input size)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="fix the batch size in the ONNX graph (default: a dynamic axis N)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="floating type of the ONNX graph (default: float32, which every "
                        "runtime supports)")
    p.set_defaults(func=cmd_export)


def _load_any(path: str):
    """A model from a ``.npz`` checkpoint or a ``.safetensors`` file."""
    if path.lower().endswith(".safetensors"):
        from .. import io

        return io.load(path)
    from ..train import load_model

    return load_model(path)[0]


def cmd_export(args) -> int:
    """Write the file; bad input (a missing package or file, a model ONNX cannot express)
    raises an error that :func:`numcnn.cli.main` reports in one line."""
    output = str(args.output)
    kind = output.lower().rsplit(".", 1)[-1] if "." in output else ""
    if kind not in ("onnx", "safetensors"):
        raise UserError(f"the output {output!r} must end in .onnx or .safetensors")
    try:
        _export(args, output, kind)
    except (ImportError, TypeError) as err:  # a missing optional package, a model it cannot take
        raise UserError(str(err)) from err
    return 0


def _export(args, output: str, kind: str) -> None:
    if kind == "safetensors":  # the ONNX graph's flags have nothing to set there
        given = [flag for flag, value in (("--opset", args.opset), ("--input-shape", args.input_shape),
                                          ("--batch-size", args.batch_size), ("--dtype", args.dtype))
                 if value is not None]
        if given:
            raise UserError(f"{', '.join(given)} applies to an .onnx output only; a .safetensors "
                            "file keeps the checkpoint's weights as they are")
    model = _load_any(str(args.checkpoint))
    if kind == "safetensors":
        from .. import io

        io.save(model, output)
        print(f"wrote {output} ({type(model).__name__}, {model.num_parameters():,} "
              "parameters, safetensors)")
        return
    from ..onnx import export
    from ..onnx.export import DEFAULT_OPSET

    args.opset = DEFAULT_OPSET if args.opset is None else args.opset
    args.dtype = "float32" if args.dtype is None else args.dtype
    export(model, args.input_shape, output, opset=args.opset, batch_size=args.batch_size,
           dtype=args.dtype)
    shape = args.input_shape
    if shape is None:
        from ..models import input_size

        shape = input_size(model.arch, **model.config)
    batch = "N" if args.batch_size is None else args.batch_size
    print(f"wrote {output} ({type(model).__name__}, opset {args.opset}, {args.dtype} input "
          f"({batch}, {', '.join(map(str, shape))}))")
