"""``numcnn predict``: classify image files with a checkpoint.

Images are read defensively: a ``.npy`` file's header is checked before any data is read, an
image file's declared size before a pixel is decoded, and values that a cast would wrap or clip
are refused rather than guessed at.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..validation import positive_int

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
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
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


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify images with a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+", help="PNG/JPEG (needs Pillow) or .npy 28x28 images")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="invert dark-on-light images to the data set's light-on-dark "
                        "(default: auto, by the border brightness)")
    p.add_argument("--top", type=positive_int, default=3, help="classes to list per image")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    from .. import functional as F
    from ..autograd import Tensor, no_grad
    from ..train import DATASETS, checkpoint_dataset, load_model, preprocessing

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
