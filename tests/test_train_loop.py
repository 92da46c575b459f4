"""numcnn.train.train_epoch: the one training loop, and its gradient-synchronisation hook.

A hook says which slice of each batch this process trains on and turns the local gradients
into the batch's; :class:`numcnn.train.LocalGradients` (one process) and
:class:`numcnn.distributed.DataParallel` (MPI ranks) are the two. DataParallel runs here on a
one-rank stand-in for an MPI communicator, without MPI.
"""
from __future__ import annotations

import numpy as np
import pytest

from numcnn import nn, optim
from numcnn import random as nc_random
from numcnn.distributed import DataParallel
from numcnn.train import LocalGradients, TrainingDiverged, train_epoch


def _batches(n_batches=3, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((batch, 1, 2, 3)), rng.integers(0, 3, batch))
            for _ in range(n_batches)]


def _model_and_optimizer(seed=0):
    nc_random.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 3)).double()
    return model, optim.SGD(model.parameters(), lr=0.5, momentum=0.9)


def _params(model):
    return [p.data.copy() for p in model.parameters()]


class Recording(LocalGradients):
    def __init__(self):
        self.calls = []

    def start_epoch(self, model, loader, optimizer):
        self.calls.append(("start_epoch",))

    def shard(self, n):
        self.calls.append(("shard", n))
        return super().shard(n)

    def synchronize(self, n_local, n_global, loss, correct):
        self.calls.append(("synchronize", n_local, n_global))
        return super().synchronize(n_local, n_global, loss, correct)

    def end_epoch(self, model):
        self.calls.append(("end_epoch",))


def test_the_hook_is_called_once_per_epoch_and_batch_and_changes_nothing_by_itself():
    model, opt = _model_and_optimizer()
    plain = train_epoch(model, _batches(), opt)
    model2, opt2 = _model_and_optimizer()
    hook = Recording()
    hooked = train_epoch(model2, _batches(), opt2, sync=hook)
    assert hook.calls == [("start_epoch",)] + [("shard", 8), ("synchronize", 8, 8)] * 3 + [
        ("end_epoch",)]
    assert hooked[:2] == plain[:2]
    for a, b in zip(_params(model), _params(model2)):
        np.testing.assert_array_equal(a, b)


def test_a_shard_trains_on_its_slice_and_the_hook_says_the_batch_loss():
    class FirstHalf(LocalGradients):
        def shard(self, n):
            return 0, n // 2

        def synchronize(self, n_local, n_global, loss, correct):
            assert (n_local, n_global) == (4, 8)
            return 10 * loss, n_global  # what a reduction over all ranks would answer

    model, opt = _model_and_optimizer()
    loss, acc, _, _ = train_epoch(model, _batches(), opt, sync=FirstHalf())
    halves = [(x[:4], y[:4]) for x, y in _batches()]
    model2, opt2 = _model_and_optimizer()
    half_loss, _, _, _ = train_epoch(model2, halves, opt2)
    for a, b in zip(_params(model), _params(model2)):
        np.testing.assert_array_equal(a, b)  # the gradients of the first halves only
    assert acc == 1.0  # the hook's correct count
    assert loss == pytest.approx(10 * half_loss)  # the hook's loss


def test_an_empty_shard_computes_nothing_and_still_steps_in_time():
    class Idle(LocalGradients):
        def shard(self, n):
            return n, n

        def synchronize(self, n_local, n_global, loss, correct):
            assert (n_local, loss, correct) == (0, 0.0, 0)
            return 1.5, 2

    model, opt = _model_and_optimizer()
    before = _params(model)
    lrs: list = []
    loss, acc, _, _ = train_epoch(model, _batches(), opt, lr_log=lrs, sync=Idle())
    assert all(p.grad is None for p in model.parameters())
    for a, b in zip(before, _params(model)):
        np.testing.assert_array_equal(a, b)  # no gradient: the step leaves them
    assert (loss, acc, len(lrs)) == (1.5, 6 / 24, 3)


def test_a_non_finite_batch_loss_from_the_hook_stops_before_the_step():
    class Diverged(LocalGradients):
        def synchronize(self, n_local, n_global, loss, correct):
            return float("nan"), correct

    model, opt = _model_and_optimizer()
    before = _params(model)
    with pytest.raises(TrainingDiverged, match=r"loss became nan after 0 images.*--lr"):
        train_epoch(model, _batches(), opt, sync=Diverged())
    for a, b in zip(before, _params(model)):
        np.testing.assert_array_equal(a, b)


def test_a_non_finite_local_loss_skips_the_backward_pass():
    model, opt = _model_and_optimizer()
    model[1].weight.data[...] = np.inf
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="loss became nan"):
        train_epoch(model, _batches(), opt)
    assert all(p.grad is None for p in model.parameters())


class OneRank:
    """The calls DataParallel makes on an MPI communicator, for a world of one rank."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, obj, root=0):
        return obj

    def Bcast(self, buffer, root=0):
        pass


def test_data_parallel_is_a_hook_of_the_same_loop():
    model, opt = _model_and_optimizer()
    plain = train_epoch(model, _batches(), opt)
    model2, opt2 = _model_and_optimizer()
    dp = DataParallel(comm=OneRank())
    parallel = train_epoch(model2, _batches(), opt2, sync=dp)
    for a, b in zip(_params(model), _params(model2)):
        np.testing.assert_array_equal(a, b)
    assert parallel[0] == pytest.approx(plain[0]) and parallel[1] == plain[1]
    assert dp.timings["steps"] == 3 and dp.timings["images"] == 24
    assert not hasattr(dp, "train_epoch")  # no second copy of the loop
