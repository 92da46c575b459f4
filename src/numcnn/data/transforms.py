"""Image transforms that work on one image and, vectorized, on a whole batch.

A one-image call ``t(x)`` takes ``(H, W)`` or ``(C, H, W)``; ``t.batch(x)`` takes a batch,
``(N, H, W)`` or ``(N, C, H, W)``, with no Python loop over its images. The two are separate
methods because a 3-D array is ambiguous: ``(C, H, W)`` for one image, ``(N, H, W)`` for a
batch. ``t(x)`` equals ``t.batch(x[None])[0]``, which is how the base class implements it.

Random transforms draw their parameters independently for every image from a
``numpy.random.Generator``: their own (built from ``seed``), or one passed as ``rng=``, as
:class:`numcnn.data.DataLoader` does so that an epoch's augmentation depends only on the
loader's seed and the epoch.

Dimension legend: N batch, C channels, H/W image size, h/w crop size.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np

from numcnn.validation import check_bool, check_float_dtype, is_int, is_real, to_pair

Seed = int | np.random.Generator | np.random.SeedSequence | None


class Transform:
    """Base class: subclasses implement :meth:`batch`; a one-image call reuses it."""

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        """Transform one image, ``(H, W)`` or ``(C, H, W)``."""
        x = np.asarray(x)
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: expected one image of shape (H, W) or (C, H, W), got "
                f"shape {x.shape}; call .batch() for a batch"
            )
        return self.batch(x[None], rng=rng)[0]

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        """Transform a batch, ``(N, H, W)`` or ``(N, C, H, W)``."""
        raise NotImplementedError

    def _check_batch(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise ValueError(
                f"{type(self).__name__}: expected a batch of shape (N, H, W) or (N, C, H, W), "
                f"got shape {x.shape}"
            )
        return x


def apply_batch(transform: Callable, x, rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply ``transform`` to a batch, vectorized when it offers ``.batch``.

    Parameters
    ----------
    transform : callable
        A :class:`Transform`, an object with a ``batch`` method, or a plain one-sample
        callable (applied sample by sample, then stacked: correct but slow).
    x : array_like
        Batch; its first axis indexes samples.
    rng : numpy.random.Generator, optional
        Passed to :class:`Transform` instances in place of their own generator.

    Returns
    -------
    numpy.ndarray
        The transformed batch.
    """
    if isinstance(transform, Transform):
        return transform.batch(x, rng=rng)
    batch = getattr(transform, "batch", None)
    if callable(batch):
        return batch(x)
    x = np.asarray(x)
    if len(x) == 0:
        return x
    return np.stack([np.asarray(transform(item)) for item in x])


class Compose(Transform):
    """Chain transforms, like ``torchvision.transforms.Compose``.

    Parameters
    ----------
    transforms : sequence of callable
        Applied in order. Plain callables are allowed; in :meth:`batch` they run per sample.
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose: transforms[{i}] is not callable: {t!r}")

    def __call__(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        for t in self.transforms:
            x = t(x, rng=rng) if isinstance(t, Transform) else t(x)
        return x

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        for t in self.transforms:
            x = apply_batch(t, x, rng)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToFloat(Transform):
    """Convert uint8 images to floats in [0, 1] and add the channel axis.

    ``(H, W)`` becomes ``(1, H, W)`` and a batch ``(N, H, W)`` becomes ``(N, 1, H, W)``;
    inputs that already have a channel axis keep their shape. uint8 values are divided by
    255; floating inputs are only cast. (The counterpart of torchvision's ``ToTensor``.)

    Parameters
    ----------
    dtype : numpy dtype, optional
        ``float32`` (default) or ``float64``.
    """

    def __init__(self, dtype=np.float32):
        self.dtype = check_float_dtype(dtype, "ToFloat")

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        x = self._check_batch(x)
        if x.dtype == np.uint8:
            y = np.divide(x, 255, dtype=self.dtype)
        elif x.dtype.kind == "f":
            y = x.astype(self.dtype, copy=False)
        else:
            raise TypeError(f"ToFloat: expected uint8 or floating images, got {x.dtype}")
        return y[:, None] if y.ndim == 3 else y  # (N, H, W) -> (N, 1, H, W)

    def __repr__(self) -> str:
        return f"ToFloat(dtype={self.dtype.name})"


class ToTensor(ToFloat):
    """torchvision's ``ToTensor``: uint8 images to float32 in [0, 1] with a channel axis;
    a one-image call returns a :class:`~numcnn.Tensor` (a batch stays an ndarray for the next
    transform; :class:`~numcnn.data.DataLoader` yields Tensors anyway).

    numcnn images are channel-first, so a 3-D image is taken as ``(C, H, W)`` and not
    transposed (torchvision reads a 3-D ndarray as ``(H, W, C)``); ``(H, W)`` becomes
    ``(1, H, W)`` in both.
    """

    def __init__(self):
        super().__init__(np.float32)

    def __call__(self, x, rng: np.random.Generator | None = None):
        from numcnn.autograd import Tensor
        return Tensor(super().__call__(x, rng))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize(Transform):
    """Subtract ``mean`` and divide by ``std`` per channel, like torchvision's ``Normalize``.

    Parameters
    ----------
    mean, std : float or sequence of float
        One value for all channels, or one per channel. ``std`` must be positive.
    """

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.ndim != 1 or v.size == 0:
                raise ValueError(f"Normalize: {name} must be a number or a 1-D sequence, "
                                 f"got {v.tolist()!r}")
        if self.mean.size != self.std.size and 1 not in (self.mean.size, self.std.size):
            raise ValueError(f"Normalize: mean has {self.mean.size} values but std has "
                             f"{self.std.size}; expected the same number (or one)")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        x = self._check_batch(x)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected floating images (apply ToFloat first), "
                            f"got {x.dtype}")
        channels = x.shape[1] if x.ndim == 4 else 1
        size = max(self.mean.size, self.std.size)
        if size not in (1, channels):
            raise ValueError(f"Normalize: {size} mean/std values for images with {channels} "
                             f"channel(s) (batch shape {x.shape})")
        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1, 1)
        mean = self.mean.astype(x.dtype).reshape(shape)  # (1, C, 1, 1)
        std = self.std.astype(x.dtype).reshape(shape)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _parse_padding(padding, who: str) -> tuple[int, int, int, int]:
    """torchvision's convention: int, (left/right, top/bottom) or (left, top, right, bottom)."""
    values: list[Any] = [padding] if isinstance(padding, Integral) else list(padding)
    if len(values) not in (1, 2, 4) or not all(is_int(v) and v >= 0 for v in values):
        raise ValueError(f"{who}: padding must be a non-negative int or a sequence of 2 or 4 "
                         f"of them, got {padding!r}")
    if len(values) == 1:
        values *= 4
    elif len(values) == 2:
        values *= 2
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


def _pad(x: np.ndarray, padding: tuple[int, int, int, int], fill: float) -> np.ndarray:
    """Pad the last two axes of ``x`` by (left, top, right, bottom) with a constant."""
    left, top, right, bottom = padding
    if not any(padding):
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, widths, mode="constant", constant_values=fill)


def _crop(x: np.ndarray, tops: np.ndarray, lefts: np.ndarray, h: int, w: int) -> np.ndarray:
    """Cut an ``h x w`` window at its own (top, left) out of every image of a batch."""
    lead = (len(x),) + (1,) * (x.ndim - 3)
    rows = (tops[:, None] + np.arange(h)).reshape(lead + (h, 1))  # (N, [1,] h, 1)
    cols = (lefts[:, None] + np.arange(w)).reshape(lead + (1, w))  # (N, [1,] 1, w)
    x = np.take_along_axis(x, rows, axis=-2)  # (N, [C,] h, W)
    return np.take_along_axis(x, cols, axis=-1)  # (N, [C,] h, w)


class Pad(Transform):
    """Pad the borders with a constant, like torchvision's ``Pad`` (constant mode).

    Parameters
    ----------
    padding : int or sequence of int
        All sides; ``(left/right, top/bottom)``; or ``(left, top, right, bottom)``.
    fill : float, optional
        Value of the new pixels (torchvision's name for it).
    """

    def __init__(self, padding, fill: float = 0):
        self.padding = _parse_padding(padding, "Pad")
        if not (is_real(fill) or isinstance(fill, bool)):  # a bool is a number to torchvision
            raise TypeError(f"Pad: fill must be a number, got {fill!r}")
        self.fill = fill

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        return _pad(self._check_batch(x), self.padding, self.fill)

    def __repr__(self) -> str:
        return f"Pad(padding={self.padding}, fill={self.fill})"


class RandomShift(Transform):
    """Translate every image by its own random whole-pixel offset, filling with a constant.

    Each image gets ``(dy, dx)`` drawn uniformly from ``[-max_dy, max_dy] x [-max_dx, max_dx]``;
    ``out[..., i, j] = x[..., i - dy, j - dx]``, and ``fill`` where that falls outside. Apply
    it before :class:`Normalize` so that the fill matches the background.

    Parameters
    ----------
    max_shift : int or (int, int)
        Largest shift in pixels, for both axes or as ``(max_dy, max_dx)``.
    fill : float, optional
        Value of the uncovered pixels.
    seed : int, numpy.random.Generator or None, optional
        Source of the offsets (see ``numpy.random.default_rng``).
    """

    def __init__(self, max_shift, fill: float = 0, seed: Seed = None):
        self.max_shift = to_pair(max_shift, "max_shift", "RandomShift", minimum=0)
        self.fill = fill
        self.rng = np.random.default_rng(seed)

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        x = self._check_batch(x)
        my, mx = self.max_shift
        offsets = (self.rng if rng is None else rng).integers(
            (-my, -mx), (my + 1, mx + 1), size=(len(x), 2))  # (N, 2): (dy, dx)
        padded = _pad(x, (mx, my, mx, my), self.fill)
        return _crop(padded, my - offsets[:, 0], mx - offsets[:, 1], *x.shape[-2:])

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift}, fill={self.fill})"


class RandomCrop(Transform):
    """Crop every image at its own random position, like torchvision's ``RandomCrop``.

    The arguments come in torchvision's order. With ``pad_if_needed``, an image still smaller
    than ``size`` after ``padding`` is padded further, as torchvision does: by the missing
    height on both top and bottom, and the missing width on both left and right, so that a
    crop always fits. That padding depends only on the image size, so a batch is padded once.

    Parameters
    ----------
    size : int or (int, int)
        Output size ``(h, w)``.
    padding : int or sequence of int, optional
        Border added first (see :class:`Pad`).
    pad_if_needed : bool, optional
        Pad images smaller than ``size`` instead of raising.
    fill : float, optional
        Value of the padding.
    seed : int, numpy.random.Generator or None, optional
        Source of the crop positions.

    Examples
    --------
    >>> RandomCrop(32, pad_if_needed=True, seed=0).batch(np.ones((2, 1, 28, 30))).shape
    (2, 1, 32, 32)
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill: float = 0,
                 seed: Seed = None):
        self.size = to_pair(size, "size", "RandomCrop", minimum=1)
        self.padding = (0, 0, 0, 0) if padding is None else _parse_padding(padding, "RandomCrop")
        # a number here is most often the fill given in the wrong place
        self.pad_if_needed = check_bool(pad_if_needed, "pad_if_needed", "RandomCrop",
                                        hint=" (fill comes after it, as in torchvision)")
        self.fill = fill
        self.rng = np.random.default_rng(seed)

    def batch(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        x = _pad(self._check_batch(x), self.padding, self.fill)
        (h, w), (hp, wp) = self.size, x.shape[-2:]
        if self.pad_if_needed:
            dy, dx = max(h - hp, 0), max(w - wp, 0)  # torchvision pads both sides by the gap
            x = _pad(x, (dx, dy, dx, dy), self.fill)
            hp, wp = x.shape[-2:]
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: size {self.size} is larger than the padded image "
                             f"({hp}, {wp}); pass pad_if_needed=True to pad it")
        corners = (self.rng if rng is None else rng).integers(
            0, (hp - h + 1, wp - w + 1), size=(len(x), 2))  # (N, 2): (top, left)
        return _crop(x, corners[:, 0], corners[:, 1], h, w)

    def __repr__(self) -> str:
        return (f"RandomCrop(size={self.size}, padding={self.padding}, "
                f"pad_if_needed={self.pad_if_needed}, fill={self.fill})")
