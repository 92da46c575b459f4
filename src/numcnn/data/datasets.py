"""In-memory data sets: :class:`ArrayDataset`, :class:`MNIST` and :class:`FashionMNIST`.

Indexing with an int returns one ``(image, label)`` pair, like ``torchvision.datasets.MNIST``
(the image is a NumPy array rather than a PIL image). Indexing with a slice or a 1-D integer
array returns a whole batch ``(images, labels)`` and applies the transforms once, vectorized
(see :func:`numcnn.data.transforms.apply_batch`); :class:`numcnn.data.DataLoader` relies on it.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from numbers import Integral
from typing import ClassVar

import numpy as np

from numcnn.data import catalog
from numcnn.data.idx import read_idx
from numcnn.data.paths import resolve_dataset_dir
from numcnn.data.transforms import apply_batch


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
        owner, n = type(self).__name__, len(self)
        if isinstance(index, (bool, np.bool_)):
            raise TypeError(f"{owner}: index must be an int, a slice or a 1-D integer array, "
                            f"got {index!r}")
        if isinstance(index, Integral):
            if not -n <= index < n:
                raise IndexError(f"{owner}: index {index} is out of range for {n} samples")
            return int(index)
        if isinstance(index, slice):
            return index
        array = np.asarray(index)
        if array.size == 0:
            array = array.astype(np.intp).reshape(0)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError(f"{owner}: index must be an int, a slice or a 1-D integer array, "
                            f"got an array of shape {array.shape} and dtype {array.dtype}")
        return array

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
