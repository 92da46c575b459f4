"""Classification metrics on NumPy arrays: accuracy, confusion matrix, per-class accuracy."""
from __future__ import annotations

import numpy as np


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``M[t, p]`` = number of samples of true class t predicted as p. Shape (K, K), int64.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    array([[1, 0],
           [1, 1]])
    """
    targets, predictions = np.asarray(targets, np.int64), np.asarray(predictions, np.int64)
    if targets.ndim != 1 or targets.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: targets and predictions must be 1-D and of the same "
                         f"length, got shapes {targets.shape} and {predictions.shape}")
    for name, values in (("targets", targets), ("predictions", predictions)):
        if values.size and not (0 <= values.min() and values.max() < num_classes):
            raise ValueError(f"confusion_matrix: {name} must lie in 0..{num_classes - 1}, got "
                             f"values from {values.min()} to {values.max()}")
    flat = num_classes * targets + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class: diagonal over row sums (NaN for a class with no samples)."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


class RunningAverage:
    """Sample-weighted running mean of loss and accuracy over the batches of an epoch."""

    def __init__(self):
        self.loss_sum = 0.0
        self.correct = 0
        self.count = 0

    def update(self, loss: float, logits: np.ndarray, targets: np.ndarray) -> None:
        n = len(targets)
        self.loss_sum += float(loss) * n
        self.correct += int((logits.argmax(axis=1) == targets).sum())
        self.count += n

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.count, 1)
