"""Classification metrics against small cases computed by hand."""
from __future__ import annotations

import numpy as np
import pytest

from numcnn.metrics import RunningAverage, confusion_matrix, per_class_accuracy


def test_confusion_matrix_three_classes_by_hand():
    targets = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predictions = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2])
    # rows: true class, columns: predicted class
    expected = np.array([[2, 1, 0],
                         [0, 1, 1],
                         [1, 0, 3]])
    got = confusion_matrix(targets, predictions, 3)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64


def test_confusion_matrix_is_not_transposed():
    # one sample of class 0 predicted as class 1 goes to row 0, column 1
    got = confusion_matrix([0], [1], 2)
    np.testing.assert_array_equal(got, [[0, 1], [0, 0]])


def test_confusion_matrix_keeps_unused_classes_and_empty_input():
    got = confusion_matrix(np.array([1, 1]), np.array([1, 3]), 5)
    expected = np.zeros((5, 5), np.int64)
    expected[1, 1] = expected[1, 3] = 1
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(confusion_matrix(np.array([], np.int64), np.array([], np.int64),
                                                   4), np.zeros((4, 4)))


def test_confusion_matrix_matches_a_python_loop(rng):
    targets = rng.integers(0, 7, size=500)
    predictions = np.where(rng.random(500) < 0.6, targets, rng.integers(0, 7, size=500))
    expected = np.zeros((7, 7), np.int64)
    for t, p in zip(targets, predictions):
        expected[t, p] += 1
    got = confusion_matrix(targets, predictions, 7)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got.sum(axis=1), np.bincount(targets, minlength=7))
    assert np.trace(got) == (targets == predictions).sum()


@pytest.mark.parametrize("targets, predictions", [
    ([0, 1], [0, 3]),       # a prediction outside 0..2 would be counted in the next row
    ([3, 1], [0, 1]),
    ([-1, 1], [0, 1]),
    ([0, 1, 2], [1]),       # would broadcast
    ([[0, 1]], [[0, 1]]),
])
def test_confusion_matrix_rejects_bad_input(targets, predictions):
    with pytest.raises(ValueError, match="confusion_matrix"):
        confusion_matrix(np.array(targets), np.array(predictions), 3)


def test_per_class_accuracy_by_hand():
    confusion = np.array([[2, 1, 0],
                          [0, 1, 1],
                          [1, 0, 3]])
    np.testing.assert_allclose(per_class_accuracy(confusion), [2 / 3, 1 / 2, 3 / 4])


def test_per_class_accuracy_is_nan_for_a_class_without_samples():
    confusion = np.array([[3, 0, 1],
                          [0, 0, 0],
                          [0, 2, 0]])
    got = per_class_accuracy(confusion)
    assert got[0] == 0.75
    assert np.isnan(got[1])
    assert got[2] == 0.0


def test_running_average_weights_batches_by_size():
    stats = RunningAverage()
    assert stats.loss == 0.0 and stats.accuracy == 0.0 and stats.count == 0
    # batch 1: 3 samples, loss 1.0, 2 correct; batch 2: 1 sample, loss 3.0, 0 correct
    logits1 = np.array([[2.0, 0.0], [0.0, 1.0], [5.0, 1.0]])
    stats.update(1.0, logits1, np.array([0, 1, 1]))
    stats.update(3.0, np.array([[0.0, 1.0]]), np.array([0]))
    assert stats.count == 4
    assert stats.correct == 2
    assert stats.loss == pytest.approx((3 * 1.0 + 1 * 3.0) / 4)   # not the mean of batch means
    assert stats.accuracy == 0.5
