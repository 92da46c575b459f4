"""The DataLoader yields Tensors, accepts num_workers (threads), and ToTensor."""
from __future__ import annotations

import numpy as np
import pytest

import numcnn as nc
from numcnn.data import ArrayDataset, DataLoader, RandomShift, ToFloat, ToTensor


def _dataset(n=50):
    rng = np.random.default_rng(0)
    return ArrayDataset(rng.integers(0, 256, (n, 1, 6, 6), dtype=np.uint8),
                        rng.integers(0, 10, n))


def test_batches_are_tensors():
    loader = DataLoader(_dataset(), batch_size=16, transform=ToTensor())
    x, y = next(iter(loader))
    assert isinstance(x, nc.Tensor) and isinstance(y, nc.Tensor)
    assert x.size(0) == 16 and x.dtype == np.float32 and y.dtype == np.int64
    assert not x.requires_grad
    assert 0 <= x.min().item() and x.max().item() <= 1


@pytest.mark.parametrize("workers, prefetch", [(1, None), (3, None), (2, 1), (4, 5)])
def test_num_workers_gives_the_same_batches(workers, prefetch):
    ds = _dataset(53)
    kwargs = {"batch_size": 8, "shuffle": True, "seed": 3, "transform": RandomShift(2)}
    plain = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, **kwargs)]
    threaded = DataLoader(ds, **kwargs, num_workers=workers, prefetch_factor=prefetch,
                          pin_memory=True)
    got = [(x.numpy(), y.numpy()) for x, y in threaded]
    assert len(got) == len(plain) == 7
    for (a, b), (c, d) in zip(plain, got):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert "num_workers" in repr(threaded)


def test_num_workers_propagates_dataset_errors():
    class Broken:
        def __len__(self):
            return 10

        def __getitem__(self, idx):
            raise KeyError("broken")

    with pytest.raises(KeyError, match="broken"):
        list(DataLoader(Broken(), batch_size=2, num_workers=2))


@pytest.mark.parametrize("kwargs, pattern", [
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"num_workers": 1.5}, "num_workers option should be non-negative"),
    ({"prefetch_factor": 2}, "prefetch_factor and persistent_workers need num_workers > 0"),
    ({"persistent_workers": True}, "need num_workers > 0"),
    ({"num_workers": 2, "prefetch_factor": 0}, "prefetch_factor must be an int >= 1"),
])
def test_loader_refusals(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        DataLoader(_dataset(), **kwargs)


def test_to_tensor_matches_torchvision_semantics():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    t = ToTensor()(img)
    assert isinstance(t, nc.Tensor) and t.shape == (1, 3, 4) and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy()[0], img / 255.0, rtol=1e-6)
    f = ToTensor()(np.full((1, 2, 2), 0.5, np.float32))          # floats are not rescaled
    assert f.numpy().max() == 0.5
    batch = ToTensor().batch(np.zeros((5, 3, 4), np.uint8))
    assert batch.shape == (5, 1, 3, 4)
    np.testing.assert_array_equal(batch, ToFloat().batch(np.zeros((5, 3, 4), np.uint8)))
    assert repr(ToTensor()) == "ToTensor()"


def test_tensor_batches_work_with_numpy_metrics():
    from numcnn.metrics import RunningAverage, confusion_matrix
    _x, y = next(iter(DataLoader(_dataset(), batch_size=10)))
    logits = np.eye(10)[y.numpy()]
    stats = RunningAverage()
    stats.update(0.5, logits, y)
    assert stats.accuracy == 1.0
    assert confusion_matrix(y, logits.argmax(axis=1), 10).trace() == 10
