"""DataLoader: coverage, batching, reproducible per-epoch shuffling, exact resume."""
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import MNIST, ArrayDataset, DataLoader, RandomShift, ToFloat

DATA = Path(__file__).resolve().parents[2] / "data"


def numbered(n, features=3):
    """Sample i has x = [i, i, ...] and y = i, so batches reveal the indices they hold."""
    x = np.repeat(np.arange(n, dtype=np.float64)[:, None], features, axis=1)
    return ArrayDataset(x, np.arange(n, dtype=np.int64))


def epoch_order(loader):
    return np.concatenate([y for _, y in loader])


@pytest.mark.parametrize("n, batch_size, drop_last, expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3),
    (2, 5, False, 1), (2, 5, True, 0), (0, 4, False, 0), (7, 1, False, 7),
])
def test_len_and_batch_sizes(n, batch_size, drop_last, expected):
    loader = DataLoader(numbered(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == expected
    sizes = [len(y) for _, y in batches]
    assert all(s == batch_size for s in sizes[:-1])
    if drop_last:
        assert all(s == batch_size for s in sizes)
    else:
        assert sum(sizes) == n


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 64])
def test_every_sample_once_per_epoch(shuffle, batch_size):
    loader = DataLoader(numbered(50), batch_size=batch_size, shuffle=shuffle, seed=3)
    for _ in range(3):
        seen = []
        for x, y in loader:
            np.testing.assert_array_equal(x[:, 0], y)  # x and y stay paired
            seen.append(y)
        assert sorted(np.concatenate(seen).tolist()) == list(range(50))


def test_drop_last_drops_only_the_partial_batch():
    loader = DataLoader(numbered(10), batch_size=4, shuffle=True, drop_last=True, seed=0)
    order = epoch_order(loader)
    assert len(order) == 8 and len(set(order.tolist())) == 8
    np.testing.assert_array_equal(order, loader.indices(0)[:8])


def test_no_shuffle_keeps_dataset_order():
    loader = DataLoader(numbered(11), batch_size=4)
    assert epoch_order(loader).tolist() == list(range(11))
    assert epoch_order(loader).tolist() == list(range(11))


def test_shuffle_is_reproducible_and_changes_per_epoch():
    a = DataLoader(numbered(100), batch_size=10, shuffle=True, seed=1)
    b = DataLoader(numbered(100), batch_size=10, shuffle=True, seed=1)
    c = DataLoader(numbered(100), batch_size=10, shuffle=True, seed=2)
    epochs_a = [epoch_order(a) for _ in range(3)]
    epochs_b = [epoch_order(b) for _ in range(3)]
    for ea, eb in zip(epochs_a, epochs_b):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    assert not np.array_equal(epochs_a[1], epochs_a[2])
    assert not np.array_equal(epochs_a[0], epoch_order(c))
    assert not np.array_equal(epochs_a[0], np.arange(100))
    assert a.epoch == 3


def test_set_epoch_resumes_exactly():
    """Order and augmentation of epoch e depend only on (seed, e)."""
    images = np.arange(1, 61, dtype=np.float64)[:, None, None] * np.ones((60, 4, 4))
    dataset = ArrayDataset(images, np.arange(60))
    full = DataLoader(dataset, batch_size=8, shuffle=True, seed=5, transform=RandomShift(1))
    runs = [list(full) for _ in range(4)]
    resumed = DataLoader(dataset, batch_size=8, shuffle=True, seed=5, transform=RandomShift(1))
    resumed.set_epoch(2)
    for epoch in (2, 3):
        for (x0, y0), (x1, y1) in zip(runs[epoch], resumed, strict=True):
            np.testing.assert_array_equal(y0, y1)
            np.testing.assert_array_equal(x0, x1)
    np.testing.assert_array_equal(resumed.indices(1), np.concatenate([y for _, y in runs[1]]))
    with pytest.raises(ValueError, match="epoch must be a non-negative int, got -1"):
        resumed.set_epoch(-1)


def test_loader_transform_augments_per_epoch():
    images = np.zeros((4, 5, 5), np.uint8)
    images[:, 2, 2] = 255
    loader = DataLoader(ArrayDataset(images, np.zeros(4, np.int64)), batch_size=4, seed=0,
                        transform=RandomShift(2))
    first, second = next(iter(loader))[0], next(iter(loader))[0]
    assert first.shape == (4, 5, 5) and (first == 255).sum() == 4  # one bright pixel each
    assert not np.array_equal(first, second)


def test_seed_none_still_shuffles():
    loader = DataLoader(numbered(100), batch_size=100, shuffle=True)
    assert isinstance(loader.seed, int)
    order = epoch_order(loader)
    assert sorted(order.tolist()) == list(range(100)) and not np.array_equal(order,
                                                                            np.arange(100))


def test_dataset_is_indexed_once_per_batch_with_an_index_array():
    calls = []

    class Spy(ArrayDataset):
        def __getitem__(self, index):
            calls.append(index)
            return super().__getitem__(index)

    loader = DataLoader(Spy(np.zeros((23, 2)), np.zeros(23, np.int64)), batch_size=5,
                        shuffle=True, seed=0)
    list(loader)
    assert len(calls) == len(loader) == 5
    assert all(isinstance(c, np.ndarray) and c.dtype == np.int64 for c in calls)


def test_mnist_batches():
    ds = MNIST(DATA, train=False, download=False, limit=100, transform=ToFloat())
    loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    x, y = batches[0]
    assert x.shape == (32, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (32,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert batches[-1][0].shape == (4, 1, 28, 28)
    i = loader.indices(0)[0]
    np.testing.assert_array_equal(x[0, 0], ds.data[i] / np.float32(255))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, None])
def test_batch_size_is_validated(bad):
    with pytest.raises(ValueError, match=f"batch_size must be an int >= 1, got {bad!r}"):
        DataLoader(numbered(3), batch_size=bad)


def test_seed_is_validated():
    with pytest.raises(ValueError, match="seed must be a non-negative int or None, got -2"):
        DataLoader(numbered(3), seed=-2)
