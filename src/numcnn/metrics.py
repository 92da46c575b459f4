"""Classification metrics on NumPy arrays (accuracy, confusion matrix, per-class accuracy) and
the reader of a training run's ``metrics.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path

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
        self.add(loss, int((logits.argmax(axis=1) == targets).sum()), len(targets))

    def add(self, loss: float, correct: int, n: int) -> None:
        """A batch of ``n`` samples with mean loss ``loss`` and ``correct`` right predictions."""
        self.loss_sum += float(loss) * n
        self.correct += int(correct)
        self.count += n

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.count, 1)


# --- metrics.jsonl ---------------------------------------------------------------------------

#: The keys every line of a training run's ``metrics.jsonl`` holds, as numbers.
EPOCH_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc")


class MetricsError(ValueError):
    """A ``metrics.jsonl`` file is malformed; the message names the file and the line."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_metrics_file(path, required=EPOCH_KEYS) -> tuple[list[dict], str | None]:
    """The rows of a ``metrics.jsonl`` file and a warning (or None) about a torn last line.

    Each line must be a JSON object with a positive integer ``epoch`` and the ``required``
    keys as numbers. The last line alone may be cut short (a write interrupted by a kill or a
    full disk): it is skipped and the warning says so. Anything else malformed raises
    :class:`MetricsError` naming the file and the line.
    """
    path = Path(path)
    if path.is_dir():
        raise MetricsError(f"{path} is a folder, not a metrics file")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise MetricsError(f"cannot read {path}: {err.strerror or err}") from None
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows, warning = [], None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path} line {i + 1}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if i == last:
                warning = (f"{where} is incomplete (a write was interrupted) and was skipped: "
                           f"{line[:40]!r}{'...' if len(line) > 40 else ''}")
                continue
            raise MetricsError(f"{where} is not valid JSON: {err.msg} (column {err.colno})") \
                from None
        if not isinstance(row, dict):
            raise MetricsError(f"{where} is a JSON {type(row).__name__}, expected an object "
                               f"like {{\"epoch\": 1, ...}}")
        epoch = row.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise MetricsError(f"{where}: 'epoch' must be a positive integer, got {epoch!r}")
        for key in required:
            if key not in row:
                raise MetricsError(f"{where} lacks {key!r}")
            if not _is_number(row[key]):
                raise MetricsError(f"{where}: {key!r} must be a number, got {row[key]!r}")
        rows.append(row)
    return rows, warning
