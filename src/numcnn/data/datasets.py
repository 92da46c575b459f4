"""In-memory data sets: :class:`ArrayDataset`, :class:`MNIST` and :class:`FashionMNIST`.

Indexing with an int returns one ``(image, label)`` pair, like ``torchvision.datasets.MNIST``
(the image is a NumPy array rather than a PIL image). Indexing with a slice or a 1-D integer
array returns a whole batch ``(images, labels)`` and applies the transforms once, vectorized
(see :func:`numcnn.data.transforms.apply_batch`); :class:`numcnn.data.DataLoader` relies on it.

:class:`Subset` and :func:`random_split` (as in ``torch.utils.data``) select samples of any
of these without copying, and keep that batched indexing.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np

from numcnn.data import catalog
from numcnn.data.idx import read_idx
from numcnn.data.paths import resolve_dataset_dir
from numcnn.data.transforms import Seed, apply_batch


def _check_index(index, n: int, owner: str):
    """Return an int (bounds-checked), a slice or a 1-D integer array; raise for anything else."""
    if isinstance(index, (bool, np.bool_)):
        raise TypeError(f"{owner}: index must be an int, a slice or a 1-D integer array, "
                        f"got {index!r}")
    if isinstance(index, Integral):
        position = int(index)
        if not -n <= position < n:
            raise IndexError(f"{owner}: index {index} is out of range for {n} samples")
        return position
    if isinstance(index, slice):
        return index
    array = np.asarray(index)
    if array.size == 0:
        array = array.astype(np.intp).reshape(0)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise TypeError(f"{owner}: index must be an int, a slice or a 1-D integer array, "
                        f"got an array of shape {array.shape} and dtype {array.dtype}")
    return array


class ArrayDataset:
    """A data set over two arrays whose first axes index the samples.

    Parameters
    ----------
    x : array_like
        Inputs, ``(n, ...)``.
    y : array_like
        Targets, ``(n, ...)`` (usually int64 class indices, ``(n,)``).
    transform, target_transform : callable, optional
        Applied to inputs and targets on indexing (see the module docstring).

    Attributes
    ----------
    data, targets : numpy.ndarray
        The arrays, as given.
    """

    def __init__(self, x, y, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        self.data = np.asarray(x)
        self.targets = np.asarray(y)
        if self.data.ndim == 0 or self.targets.ndim == 0:
            raise ValueError(f"{type(self).__name__}: x and y must have a sample axis, got "
                             f"shapes {self.data.shape} and {self.targets.shape}")
        if len(self.data) != len(self.targets):
            raise ValueError(f"{type(self).__name__}: x has {len(self.data)} samples but y has "
                             f"{len(self.targets)}; expected the same number")
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index):
        """Return ``(x, y)`` for an int index, or a batch for a slice or an index array."""
        index = self._check_index(index)
        x, y = self.data[index], self.targets[index]
        if isinstance(index, int):
            if self.transform is not None:
                x = self.transform(x)
            y = y.item() if np.ndim(y) == 0 else y
            if self.target_transform is not None:
                y = self.target_transform(y)
            return x, y
        if self.transform is not None:
            x = apply_batch(self.transform, x)
        if self.target_transform is not None:
            y = apply_batch(self.target_transform, y)
        return x, y

    def _check_index(self, index):
        """Return an int, a slice or a 1-D integer array; raise for anything else."""
        return _check_index(index, len(self), type(self).__name__)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n={len(self)}, x shape {self.data.shape[1:]}, "
                f"y shape {self.targets.shape[1:]})")


class MNIST(ArrayDataset):
    """The MNIST handwritten digits (LeCun, Cortes and Burges): 60,000 train, 10,000 test.

    The files are found as described in :mod:`numcnn.data.paths`: ``root`` when given, else
    ``$NUMCNN_DATA``, the checkout's bundled ``data/``, the user cache; and downloaded (with
    SHA-256 verification) when none holds them.

    Parameters
    ----------
    root : str or os.PathLike, optional
        Data directory holding a ``mnist/`` folder (unlike torchvision, no ``raw/`` level).
    train : bool, optional
        Training split (True) or test split (False).
    transform : callable, optional
        Applied to images, e.g. ``Compose([ToFloat(), Normalize(MNIST.mean, MNIST.std)])``.
    target_transform : callable, optional
        Applied to labels.
    download : bool, optional
        Download the files when no directory holds them (default True, unlike torchvision:
        a checkout already holds the files, so this only acts where they are missing).
    limit : int, optional
        Keep only the first ``limit`` samples.

    Attributes
    ----------
    data : numpy.ndarray
        uint8 images, ``(n, 28, 28)``, 0 = background.
    targets : numpy.ndarray
        int64 labels in ``0..9``, ``(n,)``.
    classes : list of str
        Class names, indexed by label.
    mean, std : tuple of float
        Pixel mean and standard deviation of the training images scaled to [0, 1].
    folder : pathlib.Path
        Directory the files were read from.
    """

    name: ClassVar[str] = "mnist"
    classes: ClassVar[list[str]] = [str(d) for d in range(10)]
    mean: ClassVar[tuple[float, ...]] = (0.1307,)
    std: ClassVar[tuple[float, ...]] = (0.3081,)

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 download: bool = True, limit: int | None = None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, Integral)
                                  or limit < 1):
            raise ValueError(f"{type(self).__name__}: limit must be a positive int or None, "
                             f"got {limit!r}")
        self.train = bool(train)
        files = catalog.SPLIT_FILES["train" if self.train else "test"]
        self.folder = resolve_dataset_dir(self.name, root, files=files, download=download)
        images, labels = self._load(*(self.folder / f for f in files))
        if limit is not None and limit < len(labels):
            images, labels = images[:limit].copy(), labels[:limit]
        super().__init__(images, labels.astype(np.int64), transform, target_transform)

    def _load(self, images_path, labels_path) -> tuple[np.ndarray, np.ndarray]:
        """Read and cross-check one split's images and labels."""
        images = read_idx(images_path, ndim=3)
        labels = read_idx(labels_path, ndim=1)
        if len(images) != len(labels):
            raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} "
                             f"holds {len(labels)} labels; expected the same number")
        if labels.size and labels.max() >= len(self.classes):
            bad = int(np.argmax(labels >= len(self.classes)))
            raise ValueError(f"{labels_path}: label {labels[bad]} at index {bad} is out of "
                             f"range; expected 0..{len(self.classes) - 1}")
        return images, labels

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Map each class name to its label."""
        return {c: i for i, c in enumerate(self.classes)}

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return (f"Dataset {type(self).__name__}\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.folder}\n    Split: {split}")


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research): a drop-in for MNIST.

    Same files, sizes and API as :class:`MNIST`; the data directory holds a
    ``fashion-mnist/`` folder. 6,000 train and 1,000 test images per class.
    """

    name: ClassVar[str] = "fashion-mnist"
    classes: ClassVar[list[str]] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    mean: ClassVar[tuple[float, ...]] = (0.2860,)
    std: ClassVar[tuple[float, ...]] = (0.3530,)


def _check_subset_indices(indices, n: int) -> np.ndarray:
    """Return ``indices`` as a non-negative 1-D int64 array; raise naming the bad entry."""
    try:
        array = np.asarray(indices)
    except ValueError:  # ragged nesting
        raise TypeError(f"Subset: indices must be a 1-D sequence of ints, got {indices!r}"
                        ) from None
    if array.size == 0 and array.ndim == 1:
        array = array.astype(np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        got = repr(indices) if array.ndim == 0 else (f"an array of shape {array.shape} and "
                                                      f"dtype {array.dtype}")
        hint = "; for a boolean mask pass np.flatnonzero(mask)" if array.dtype == bool else ""
        raise TypeError(f"Subset: indices must be a 1-D sequence of ints, got {got}{hint}")
    outside = (array >= n) if array.dtype.kind == "u" else (array < -n) | (array >= n)
    if outside.any():
        k = int(np.argmax(outside))
        raise IndexError(f"Subset: indices[{k}] = {array[k]} is out of range for a data set of "
                         f"{n} samples; expected {-n} <= index < {n}")
    array = array.astype(np.int64)
    return np.where(array < 0, array + n, array)


class Subset:
    """The samples of a data set at the given positions, like ``torch.utils.data.Subset``.

    Nothing is copied: ``subset[i]`` is ``dataset[indices[i]]``. A slice or an index array is
    mapped through ``indices`` and passed on as *one* index array, so a batch stays a single
    vectorized call to the underlying data set, with its transforms applied once (this is
    what :class:`numcnn.data.DataLoader` uses). Indices may repeat; negative ones count from
    the end, as in NumPy, and are stored non-negative.

    Parameters
    ----------
    dataset : indexable
        Supports ``len()`` and ``dataset[int]``; for batches also ``dataset[int_array]``.
    indices : sequence of int or 1-D integer array
        Positions in ``dataset``, each in ``-len(dataset) .. len(dataset) - 1``.

    Attributes
    ----------
    dataset
        The underlying data set (changing its transform changes the subset's too).
    indices : numpy.ndarray
        int64, ``(len(subset),)``, non-negative.

    Examples
    --------
    >>> ds = ArrayDataset(np.arange(20).reshape(10, 2), np.arange(10))
    >>> sub = Subset(ds, [7, 2, -1])
    >>> len(sub), sub.indices.tolist(), sub[0]
    (3, [7, 2, 9], (array([14, 15]), 7))
    >>> sub[1:]  # one call ds[[2, 9]]
    (array([[ 4,  5],
           [18, 19]]), array([2, 9]))
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = _check_subset_indices(indices, len(dataset))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        """``dataset[indices[index]]``: one sample for an int, a batch for a slice or array."""
        index = _check_index(index, len(self), "Subset")
        if isinstance(index, int):
            return self.dataset[int(self.indices[index])]
        return self.dataset[self.indices[index]]

    def __repr__(self) -> str:
        return (f"Subset(n={len(self)}, of {type(self.dataset).__name__} with "
                f"{len(self.dataset)} samples)")


def _split_lengths(lengths, n: int) -> list[int]:
    """Turn counts or fractions into counts summing to ``n`` (torch's rules; see random_split)."""
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence | np.ndarray):
        raise TypeError(f"random_split: lengths must be a sequence of ints or of fractions, "
                        f"got {lengths!r}")
    values = [v.item() if isinstance(v, np.generic) else v for v in lengths]  # plain numbers
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, Real):
            raise TypeError(f"random_split: lengths[{i}] must be an int or a float, got {v!r}")
    ints = [isinstance(v, Integral) for v in values]
    if any(ints) and not all(ints):
        raise TypeError(f"random_split: lengths {values!r} mixes ints and fractions; expected "
                        f"all ints (counts) or all floats (fractions summing to 1)")
    if all(ints):
        for i, v in enumerate(values):
            if v < 0:
                raise ValueError(f"random_split: lengths[{i}] = {v} is negative; expected "
                                 f"counts >= 0")
        counts = [int(v) for v in values]
        if sum(counts) != n:
            raise ValueError(f"random_split: lengths {counts} sum to {sum(counts)} but the data "
                             f"set has {n} samples; expected ints summing to {n} or fractions "
                             f"summing to 1")
        return counts
    fractions = [float(v) for v in values]
    for i, v in enumerate(fractions):
        if not 0 <= v <= 1:  # also rejects nan
            raise ValueError(f"random_split: lengths[{i}] = {v} is not a fraction in [0, 1]")
    total = math.fsum(fractions)
    if not math.isclose(total, 1.0):
        raise ValueError(f"random_split: fractions {fractions} sum to {total:g}; expected "
                         f"fractions summing to 1 (or ints summing to {n})")
    counts = [math.floor(n * v) for v in fractions]
    for i in range(n - sum(counts)):  # the leftover, one each, round-robin from the first
        counts[i % len(counts)] += 1
    for i, c in enumerate(counts):
        if c == 0:
            warnings.warn(f"random_split: split {i} (fraction {fractions[i]}) of {n} samples is "
                          f"empty", UserWarning, stacklevel=3)
    return counts


def random_split(dataset, lengths, seed: Seed = None) -> list[Subset]:
    """Split a data set into disjoint random :class:`Subset` s, like torch's ``random_split``.

    The subsets are consecutive pieces of one random permutation of ``range(len(dataset))``,
    so together they hold every sample exactly once. ``lengths`` is either

    * ints, the sizes, summing to ``len(dataset)``; or
    * fractions summing to 1: each split gets ``floor(n * fraction)`` samples and the
      leftover samples go one each to splits 0, 1, 2, ... in turn, as torch does (10 samples
      split ``[0.25, 0.25, 0.5]`` give sizes 3, 2 and 5). A split left empty gives a warning.

    Unlike torch, ints and fractions cannot be mixed, and ints are always sizes (torch reads
    ints that sum to 1, such as ``[1, 0]``, as fractions). The permutation comes from NumPy,
    so a seed gives other splits than the same seed in torch.

    Parameters
    ----------
    dataset : indexable
        Supports ``len()`` and indexing (see :class:`Subset`).
    lengths : sequence of int or sequence of float
        Sizes or fractions, one per split.
    seed : int, numpy.random.Generator or None, optional
        Source of the permutation (see ``numpy.random.default_rng``): an int makes the split
        reproducible; a generator is advanced, as a torch ``generator=`` is; None is random.

    Returns
    -------
    list of Subset
        One per entry of ``lengths``, in order.

    Examples
    --------
    >>> ds = ArrayDataset(np.zeros((10, 2)), np.arange(10))
    >>> train, val = random_split(ds, [0.8, 0.2], seed=0)
    >>> len(train), len(val)
    (8, 2)
    >>> sorted(np.concatenate([train.indices, val.indices]).tolist()) == list(range(10))
    True
    """
    n = len(dataset)
    counts = _split_lengths(lengths, n)
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise TypeError(f"random_split: seed must be a non-negative int, a "
                        f"numpy.random.Generator or None, got {seed!r}") from e
    order = rng.permutation(n)
    stops = np.cumsum(counts, dtype=np.int64)
    return [Subset(dataset, order[stop - count:stop]) for stop, count in zip(stops, counts)]
