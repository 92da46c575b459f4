"""The ``numcnn`` command: train, eval, predict, plot, explain, bench.

Errors a user can cause (missing data, wrong path, unknown model, corrupt checkpoint, NaN loss)
end with one ``numcnn: error: ...`` line and exit status 1, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from .atomic import WriteError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with what the user asked for, reported as one line."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _add_no_download(p) -> None:
    """``--no-download``, the same for every command that reads a data set: a missing data set
    is then a one-line error naming the folders searched, instead of a download."""
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never download missing data")


# --- train ---------------------------------------------------------------------------------------

def add_train_parser(sub) -> None:
    from .models import MODELS
    from .train import DATASETS, OPTIMIZERS, SCHEDULERS, TrainConfig

    # every run setting defaults to None here: a resumed run takes its saved settings, and
    # only the flags a user actually typed are checked against them
    d = TrainConfig()
    p = sub.add_parser("train", help="train a model on MNIST or Fashion-MNIST",
                       description="Train a model, evaluate it on the test split after every "
                                   "epoch, write metrics.jsonl and checkpoints to --out. A "
                                   "folder that holds a run is never overwritten: continue it "
                                   "with --resume (with its saved settings) or replace it with "
                                   "--overwrite.")
    p.add_argument("--model", choices=sorted(MODELS), help=f"architecture (default: {d.model})")
    p.add_argument("--dataset", choices=sorted(DATASETS), help=f"data set (default: {d.dataset})")
    p.add_argument("--epochs", type=_positive_int,
                   help=f"total number of epochs (default: {d.epochs}); with --resume, training "
                        "continues up to this total and the schedule is re-planned for it")
    p.add_argument("--batch-size", type=_positive_int, help=f"images per step (default: {d.batch_size})")
    p.add_argument("--lr", type=_positive_float,
                   help="learning rate (default: 0.05 for sgd, 1e-3 for adam on lenet5)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default: {d.optimizer})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum, Nesterov when > 0 (default: {d.momentum})")
    p.add_argument("--weight-decay", type=float, help=f"L2 penalty (default: {d.weight_decay})")
    p.add_argument("--scheduler", choices=SCHEDULERS,
                   help=f"learning-rate schedule, stepped every batch (default: {d.scheduler})")
    p.add_argument("--activation", choices=("tanh", "relu"), default=None,
                   help="lenet5 activation (default: tanh, as in the paper)")
    p.add_argument("--width", type=_positive_int, default=None,
                   help="convnet channels of the first block (default: 32; 16 is 4x cheaper)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random shifts of up to 2 pixels (default: on for convnet, off for lenet5)")
    p.add_argument("--seed", type=int, help=f"seed of initialization, shuffling, dropout (default: {d.seed})")
    p.add_argument("--out", default=None, help="output folder (default: runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT with its saved settings (a flag that "
                        "contradicts them is an error; --epochs may extend the run)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUT (its checkpoints, metrics and figures)")
    p.add_argument("--patience", type=_positive_int, default=None, metavar="N",
                   help="early stopping: end the run after N epochs without a better test "
                        "accuracy (default: never)")
    p.add_argument("--log-lr", action="store_true", default=None,
                   help="record the learning rate of every step (lr_steps in metrics.jsonl)")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ and fashion-mnist/ (default: $NUMCNN_DATA, the bundled data, the user cache)")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first K training images")
    p.add_argument("--test-limit", type=_positive_int, default=None, help="use only the first K test images")
    p.add_argument("--dtype", choices=("float32", "float64"), help=f"(default: {d.dtype})")
    _add_no_download(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar (default: only on a terminal)")
    p.add_argument("--distributed", action="store_true",  # distributed: numcnn.distributed
                   help="data-parallel training over MPI: mpirun -n K numcnn train "
                        "--distributed ...; --batch-size is the global batch, split over the "
                        "K ranks (needs pip install 'numcnn[mpi]')")
    p.set_defaults(func=cmd_train)


#: ``numcnn train`` flags that set a TrainConfig field of the same name.
_TRAIN_FIELDS = ("model", "dataset", "epochs", "batch_size", "lr", "optimizer", "momentum",
                 "weight_decay", "scheduler", "seed", "limit", "test_limit", "dtype", "augment",
                 "patience", "log_lr")


def train_config(args):
    """The TrainConfig of ``numcnn train``: the flags given on top of the defaults, or, with
    ``--resume``, on top of the run's saved settings (a contradicting flag is an error)."""
    from . import rundir
    from .train import TrainConfig

    flags = {k: getattr(args, k) for k in _TRAIN_FIELDS if getattr(args, k) is not None}
    options = {}
    if args.activation is not None:
        options["activation"] = args.activation
    if args.width is not None:
        options["width"] = args.width
    if args.out is not None and args.out.strip() == "":
        raise UserError("--out must name a folder, got an empty string")
    where = {"resume": args.resume, "overwrite": args.overwrite, "data_dir": args.data_dir,
             "progress": args.progress, "download": args.download,
             "distributed": args.distributed}
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite exclude each other: --resume continues the "
                        "run in --out, --overwrite replaces it")
    out = args.out or (f"runs/{flags.get('model', TrainConfig.model)}-"
                       f"{flags.get('dataset', TrainConfig.dataset)}")
    saved = rundir.saved_settings(out)[0] if args.resume else None
    model = flags.get("model") or (saved or {}).get("model") or TrainConfig.model
    if "activation" in options and model != "lenet5":
        raise UserError("--activation applies to --model lenet5 only")
    if "width" in options and model != "convnet":
        raise UserError("--width applies to --model convnet only")
    settings = {**flags, **where, "out": out, "model_options": options}
    if saved is not None:  # continue the run in --out with its own settings
        return rundir.resume_config(out, settings)
    return TrainConfig(**settings)


def cmd_train(args) -> int:
    from .distributed import launched_ranks  # distributed; imports no MPI
    from .train import fit

    if not args.distributed and launched_ranks() > 1:
        raise UserError(f"started as {launched_ranks()} MPI processes: add --distributed, or "
                        "each process trains alone and they overwrite each other's files")
    config = train_config(args)
    # a diverging run ends with TrainingDiverged; numpy's overflow warnings on the way are noise
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fit(config)
    return 0


# --- eval ------------------------------------------------------------------------------------

def add_eval_parser(sub) -> None:
    from .train import DATASETS

    p = sub.add_parser("eval", help="test loss, accuracy and confusion matrix of a checkpoint")
    p.add_argument("checkpoint", help="a .npz checkpoint written by numcnn train")
    p.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                   help="data set (default: the one the checkpoint was trained on)")
    p.add_argument("--data-dir", default=None, help="folder holding the data sets")
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first K test images")
    p.add_argument("--batch-size", type=_positive_int, default=500)
    _add_no_download(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from .data import DataLoader
    from .train import DATASETS, checkpoint_dataset, evaluate, load_model, preprocessing

    model, payload = load_model(args.checkpoint)
    dataset = args.dataset or checkpoint_dataset(payload, args.checkpoint)
    dtype = next(iter(model.state_dict().values())).dtype
    base, _, normalize = preprocessing(model.arch, dataset, False, dtype)
    test = DATASETS[dataset](args.data_dir, train=False, transform=base, limit=args.limit,
                             download=args.download)
    if len(test) == 0:
        raise UserError(f"there is no test data: the {dataset} test split holds no images")
    result = evaluate(model, DataLoader(test, args.batch_size, transform=normalize),
                      len(test.classes))
    print(f"{args.checkpoint}: {model.arch} on {dataset} test ({len(test)} images)")
    print(f"test loss {result['loss']:.4f}  accuracy {100 * result['accuracy']:.2f}%")
    print("per-class accuracy: " + "  ".join(
        f"{name} {100 * a:.1f}%" for name, a in zip(test.classes, result["per_class_accuracy"])))
    print("confusion matrix (rows: true class, columns: predicted):")
    width = max(5, len(str(result["confusion"].max())) + 1)
    print(" " * 12 + "".join(f"{k:>{width}}" for k in range(len(test.classes))))
    for name, row in zip(test.classes, result["confusion"]):
        print(f"{name[:11]:>11} " + "".join(f"{v:>{width}}" for v in row))
    return 0


# --- predict ----------------------------------------------------------------------------------

#: The most pixels an image file may declare: a 28x28 digit needs far fewer, and a larger
#: declaration is refused before anything is decoded (a decompression bomb).
MAX_IMAGE_PIXELS = 4096 * 4096


def _read_npy_image(path: Path) -> np.ndarray:
    """A ``.npy`` image, its header checked before any data is read: 28x28 elements (size-1
    axes allowed) of a real integer or floating type, and the file as long as that."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            header = f.tell()
            size = f.seek(0, 2)
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, not a .npy image") from None
    except (ValueError, EOFError, OSError) as err:
        raise UserError(f"{path} is not a readable .npy array: {err}") from None
    if dtype.hasobject:
        raise UserError(f"{path} is not a readable .npy array: it holds Python objects "
                        f"(pickled data), which numcnn never loads")
    if dtype.kind not in "uif" or dtype.fields is not None or dtype.subdtype is not None:
        raise UserError(f"{path}: expected integer or floating pixel values, got dtype {dtype} "
                        f"(bool, complex, datetime, string and structured arrays are refused)")
    squeezed = tuple(n for n in shape if n != 1)
    if squeezed != (28, 28):
        raise UserError(f"{path}: expected a 28x28 image, got shape {tuple(shape)}")
    if size != header + 28 * 28 * dtype.itemsize:
        raise UserError(f"{path} is damaged: its header describes {28 * 28 * dtype.itemsize} "
                        f"bytes of pixels but the file holds {size - header}")
    try:
        return np.load(path, allow_pickle=False).reshape(28, 28)
    except (ValueError, EOFError, OSError) as err:
        raise UserError(f"{path} is not a readable .npy array: {err}") from None


def load_image(path: Path) -> np.ndarray:
    """A grayscale image as uint8 (28, 28): ``.npy`` (integers in 0..255, or floats in [0, 1])
    or any image file Pillow reads (resized to 28x28)."""
    if not path.exists():
        raise UserError(f"image {path} does not exist")
    if path.suffix.lower() == ".npy":
        arr = _read_npy_image(path)
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                raise UserError(f"{path}: the image contains NaN or infinite values")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0 or hi > 1:
                # a 0..255 float image would be clipped to white: refuse, do not guess
                raise UserError(f"{path}: float pixel values must be in 0..1, found {lo:g}..{hi:g}"
                                f"; divide a 0..255 image by 255, or save it as uint8")
            arr = np.rint(arr * 255)
        elif arr.dtype != np.uint8:
            # the cast to uint8 would wrap them (256 -> 0, -1 -> 255): refuse, do not guess
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise UserError(f"{path}: integer pixel values must be in 0..255, found "
                                f"{lo}..{hi} (dtype {arr.dtype})")
        return arr.astype(np.uint8)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UserError("reading PNG/JPEG needs Pillow: pip install 'numcnn[image]'") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            img = Image.open(path)
        with img:
            width, height = img.size
            if width * height > MAX_IMAGE_PIXELS:  # checked before a pixel is decoded
                raise UserError(f"{path} declares {width}x{height} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS} numcnn reads (a decompression bomb?); "
                                f"resize it first")
            gray = img.convert("L").resize((28, 28), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise UserError(f"{path} is not a readable image: {err}") from None
    return np.asarray(gray, dtype=np.uint8)


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify images with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", help="PNG/JPEG (needs Pillow) or .npy 28x28 images")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="invert dark-on-light images to the data set's light-on-dark "
                        "(default: auto, by the border brightness)")
    p.add_argument("--top", type=_positive_int, default=3, help="classes to list per image")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from . import functional as F
    from .autograd import Tensor, no_grad
    from .train import DATASETS, checkpoint_dataset, load_model, preprocessing

    model, payload = load_model(args.checkpoint)
    dataset = checkpoint_dataset(payload, args.checkpoint)
    classes = DATASETS[dataset].classes
    dtype = next(iter(model.state_dict().values())).dtype
    base, _, normalize = preprocessing(model.arch, dataset, False, dtype)
    images = []
    for name in args.images:
        img = load_image(Path(name))
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).mean()
        if args.invert == "yes" or (args.invert == "auto" and border > 127):
            img = 255 - img
        images.append(img)
    x = normalize.batch(base.batch(np.stack(images)))  # (N, 1, H, W)
    model.eval()
    with no_grad():
        probs = F.softmax(model(Tensor(x)), dim=1).data
    for name, p in zip(args.images, probs):
        order = np.argsort(-p)[:args.top]
        ranked = ", ".join(f"{classes[k]} {100 * p[k]:.1f}%" for k in order)
        print(f"{name}: {classes[order[0]]}  ({ranked})")
    return 0


# --- plot ----------------------------------------------------------------------------------

def add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw training curves, filters, feature maps, confusion matrix")
    p.add_argument("dir", help="a numcnn train --out folder")
    p.add_argument("--data-dir", default=None)
    _add_no_download(p)
    p.set_defaults(func=cmd_plot)


def cmd_plot(args) -> int:
    from .plots import plot_run

    if not Path(args.dir).is_dir():
        raise UserError(f"{args.dir} is not a folder")
    for path in plot_run(args.dir, args.data_dir, download=args.download):
        print(f"wrote {path}")
    return 0


# --- main -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="numcnn", description="Convolutional neural networks in pure NumPy.")
    parser.add_argument("--version", action="version", version=f"numcnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parser(sub)
    add_eval_parser(sub)
    add_predict_parser(sub)
    add_plot_parser(sub)
    for module, name in (("explain.command", "add_explain_parser"), ("bench", "add_bench_parser"),
                         ("onnx", "add_export_parser")):
        try:
            mod = __import__(f"numcnn.{module}", fromlist=[name])
        except ImportError:
            continue
        if hasattr(mod, name):
            getattr(mod, name)(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from .checkpoint import CheckpointError
    from .data import DownloadError, IdxFormatError
    from .train import TrainingDiverged

    return (UserError, CheckpointError, IdxFormatError, DownloadError, TrainingDiverged,
            WriteError, FileNotFoundError, PermissionError, ValueError, KeyError, RuntimeError)


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
    except (*_user_errors(), OSError, MemoryError) as err:
        if not _reports_errors():
            return EXIT_ERROR
        print(f"numcnn: error: {error_line(err)}", file=sys.stderr)
        return EXIT_ERROR


def error_line(err: BaseException) -> str:
    """The one-line message of a user error, an OS error or a failed allocation."""
    if isinstance(err, MemoryError):
        detail = str(err) or "the allocation failed"
        return f"not enough memory: {detail}"
    if isinstance(err, OSError) and err.strerror and not isinstance(err, WriteError):
        where = f" {err.filename}" if err.filename else ""
        message = f"cannot access{where}: {err.strerror}"
    elif isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    else:
        message = str(err)
    return " ".join(message.split())  # one line, even for multi-line messages


def _reports_errors() -> bool:
    """Under mpirun only rank 0 prints a setup error every rank meets: one line, not K."""
    from .distributed import launched_rank

    return launched_rank() == 0


if __name__ == "__main__":
    sys.exit(main())
