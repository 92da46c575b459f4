"""Mini-batch iteration over a data set, vectorized, with reproducible shuffling."""
from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from numcnn.autograd import Tensor
from numcnn.data.transforms import apply_batch
from numcnn.validation import is_int


class DataLoader:
    """Iterate over a data set in mini-batches, like ``torch.utils.data.DataLoader``.

    Each batch is fetched with one indexing call, ``dataset[indices]`` with a 1-D int64
    array, so the data set must accept index arrays and return ``(x, y)`` batches
    (:class:`ArrayDataset`, :class:`MNIST`, :class:`FashionMNIST` and a :class:`Subset` of
    any of them, e.g. from :func:`random_split`, do). With MNIST and
    ``transform=ToFloat()`` (or ``ToTensor()``), ``x`` is a float32 ``(B, 1, 28, 28)``
    :class:`~numcnn.Tensor` and ``y`` an int64 ``(B,)`` Tensor: batches are Tensors, as in
    PyTorch (``x.size(0)``, ``y.numpy()``; NumPy functions accept them through ``__array__``).

    Every iteration is one epoch and advances the epoch counter. With ``shuffle=True`` the
    order of epoch ``e`` depends only on ``(seed, e)``: call :meth:`set_epoch` to resume at
    epoch ``e`` and get exactly the batches an uninterrupted run would have seen (as with
    ``DistributedSampler.set_epoch``). When ``seed`` is given, random transforms passed as
    ``transform`` also draw from a generator derived from ``(seed, e)``, so augmentation is
    reproducible too.

    Parameters
    ----------
    dataset : indexable
        Supports ``len()`` and ``dataset[int_array] -> (x, y)``.
    batch_size : int, optional
        Samples per batch (>= 1).
    shuffle : bool, optional
        Reshuffle the samples every epoch.
    drop_last : bool, optional
        Drop the last batch when it is smaller than ``batch_size``.
    seed : int, optional
        Seed of the shuffling (and of the loader's transforms). ``None`` draws a fresh one,
        kept in :attr:`seed`.
    transform : callable, optional
        Applied to every ``x`` batch after the data set's own transform.
    num_workers : int, optional
        0 (default) fetches each batch when it is needed. ``n > 0`` fetches up to
        ``prefetch_factor · n`` batches ahead on ``n`` threads (not processes: the
        fetch is vectorized NumPy work, which mostly runs without the GIL, so threads
        suffice and nothing is pickled). The loader's ``transform`` still runs in the
        iterating thread, in order, so results are identical for every ``num_workers``;
        a random transform given to the *data set* instead draws in fetch order, which
        threads may change.
    pin_memory, persistent_workers : bool, optional
        Accepted for compatibility; they change nothing on the CPU.

    Attributes
    ----------
    epoch : int
        The epoch the next iteration will produce.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, seed: int | None = None,
                 transform: Callable | None = None, *, num_workers: int = 0,
                 pin_memory: bool = False, prefetch_factor: int | None = None,
                 persistent_workers: bool = False):
        if not is_int(num_workers) or num_workers < 0:
            raise ValueError("DataLoader: num_workers option should be non-negative, got "
                             f"{num_workers!r}")
        if num_workers == 0 and (prefetch_factor is not None or persistent_workers):
            raise ValueError("DataLoader: prefetch_factor and persistent_workers need "
                             "num_workers > 0 (as in PyTorch)")
        if prefetch_factor is not None and (not is_int(prefetch_factor) or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor must be an int >= 1, got "
                             f"{prefetch_factor!r}")
        self.num_workers = int(num_workers)
        self.prefetch_factor = 2 if prefetch_factor is None else int(prefetch_factor)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers)
        if not is_int(batch_size) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if seed is not None and (not is_int(seed) or seed < 0):
            raise ValueError(f"DataLoader: seed must be a non-negative int or None, got {seed!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self._seeded = seed is not None
        # a fresh seed is 128 random bits, drawn as NumPy's SeedSequence() draws its entropy
        self.seed = int(seed) if seed is not None else secrets.randbits(128)
        self.transform = transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration produce epoch ``epoch`` (its order and augmentation)."""
        if not is_int(epoch) or epoch < 0:
            raise ValueError(f"DataLoader: epoch must be a non-negative int, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """Return the sample order of an epoch (default: the next one), an int64 array."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return self._generators(epoch)[0].permutation(n).astype(np.int64)

    def _generators(self, epoch: int) -> tuple[np.random.Generator, np.random.Generator]:
        """Independent generators for the order and the augmentation of an epoch."""
        order, augment = np.random.SeedSequence([self.seed, epoch]).spawn(2)
        return np.random.default_rng(order), np.random.default_rng(augment)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        order = self.indices(epoch)
        rng = self._generators(epoch)[1] if self._seeded else None
        return self._batches(order, rng)

    def _fetched(self, order: np.ndarray) -> Iterator[Any]:
        """The raw ``(x, y)`` batches in order; prefetched on threads when num_workers > 0."""
        stop = min(len(self) * self.batch_size, len(order))
        slices = [order[s:s + self.batch_size] for s in range(0, stop, self.batch_size)]
        if self.num_workers == 0:
            for idx in slices:
                yield self.dataset[idx]
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor
        ahead = self.prefetch_factor * self.num_workers
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="numcnn-loader") as pool:
            pending = deque(pool.submit(self.dataset.__getitem__, idx) for idx in slices[:ahead])
            for idx in slices[ahead:]:
                batch = pending.popleft().result()
                pending.append(pool.submit(self.dataset.__getitem__, idx))
                yield batch
            while pending:
                yield pending.popleft().result()

    def _batches(self, order: np.ndarray,
                 rng: np.random.Generator | None) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in self._fetched(order):
            if self.transform is not None:
                x = apply_batch(self.transform, x, rng)
            yield _as_tensor(x), _as_tensor(y)

    def __repr__(self) -> str:
        workers = f", num_workers={self.num_workers}" if self.num_workers else ""
        return (f"DataLoader(batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}{workers}, batches={len(self)})")


def _as_tensor(value: Any) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(value)
