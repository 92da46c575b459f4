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
from numcnn.train import LocalGradients, TrainingDiverged, evaluate, train_epoch


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


# --- evaluate: the one evaluation loop, sharded and summed through the same hook ---------------

def _evaluated(model, hook=None):
    return evaluate(model, _batches(seed=1), num_classes=3, sync=hook)


def _same_result(a, b):
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-12) and a["accuracy"] == b["accuracy"]
    np.testing.assert_array_equal(a["confusion"], b["confusion"])
    np.testing.assert_array_equal(a["per_class_accuracy"], b["per_class_accuracy"])


def test_evaluate_takes_its_slice_of_every_batch_and_the_hook_sums_the_totals():
    """Two processes, played in turn: each evaluates one half of every batch, and the second
    one's reduction adds the first one's totals, as an Allreduce would."""
    class Half(LocalGradients):
        def __init__(self, second, other_totals=None):
            self.second, self.other_totals, self.totals = second, other_totals, None

        def eval_shard(self, n):
            return (n // 2, n) if self.second else (0, n // 2)

        def reduce_eval(self, loss_sum, count, confusion):
            self.totals = (loss_sum, count, confusion.copy())
            if self.other_totals is not None:
                loss_sum += self.other_totals[0]
                count += self.other_totals[1]
                confusion = confusion + self.other_totals[2]
            return loss_sum, count, confusion

    model, _ = _model_and_optimizer()
    first = Half(second=False)
    _evaluated(model, first)
    assert first.totals[1] == 12  # 4 of each batch of 8
    second = Half(second=True, other_totals=first.totals)
    _same_result(_evaluated(model, second), _evaluated(model))
    assert second.totals[1] == 12


def test_evaluate_skips_an_empty_slice_and_counts_only_the_sums():
    class Idle(LocalGradients):
        def eval_shard(self, n):
            return n, n

        def reduce_eval(self, loss_sum, count, confusion):
            assert (loss_sum, count, confusion.sum()) == (0.0, 0, 0)
            return 6.0, 4, np.array([[1, 0, 0], [0, 2, 0], [1, 0, 0]])

    model, _ = _model_and_optimizer()
    result = _evaluated(model, Idle())
    assert (result["loss"], result["accuracy"]) == (1.5, 0.75)
    np.testing.assert_array_equal(result["per_class_accuracy"], [1.0, 1.0, 0.0])


def test_evaluate_refuses_when_no_process_saw_an_image():
    model, _ = _model_and_optimizer()
    with pytest.raises(ValueError, match="there is no test data"):
        evaluate(model, [], num_classes=3, sync=DataParallel(comm=OneRank()))


def test_data_parallel_evaluates_through_the_same_loop():
    model, _ = _model_and_optimizer()
    dp = DataParallel(comm=OneRank())
    _same_result(_evaluated(model, dp), _evaluated(model))
    assert not hasattr(dp, "evaluate")  # no second copy of the loop


def test_data_parallel_evaluates_slices_of_one_image_but_trains_on_two_or_more():
    class SecondOfFour(OneRank):
        def Get_rank(self):
            return 1

        def Get_size(self):
            return 4

    dp = DataParallel(comm=SecondOfFour())
    assert dp.eval_shard(3) == (1, 2)  # evaluation runs BatchNorm on its running estimates
    assert dp.shard(3) == (3, 3)       # training needs two images per rank for BatchNorm
