"""One full MNIST epoch of ``numcnn train``, as a user waits for it."""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from numcnn.train import TrainConfig, fit


def mnist_epoch(limit: int | None = None, data_dir: str | None = None,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    """One epoch of ``numcnn train`` (LeNet-5 on MNIST, the training defaults, one epoch).

    Counts everything a user waits for per epoch that the per-step rows do not: data loading
    and normalization, shuffling, the optimizer and scheduler, the test pass and checkpoints.
    ``limit`` caps the train and test images (for tests); the files go to a temporary folder.
    Raises FileNotFoundError where MNIST is not on disk (it is never downloaded here).
    """
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(epochs=1, out=out, data_dir=data_dir, limit=limit,
                             test_limit=limit, download=False, progress=False)
        start = clock()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            row = fit(config, log=lambda line: None)
        total = clock() - start
    return {"case": f"{config.model} {config.dataset} epoch, batch {config.batch_size}",
            "images": round(row["images_per_second"] * row["seconds"]),
            "train_seconds": row["seconds"], "images_per_second": row["images_per_second"],
            "total_seconds": total, "test_acc": row["test_acc"]}


def format_epoch_row(row: dict[str, Any]) -> str:
    return (f"{row['case']:<52} {row['train_seconds']:.1f} s train pass, "
            f"{row['images_per_second']:.0f} img/s ({row['images']} images); "
            f"{row['total_seconds']:.1f} s with loading, test pass and checkpoints")
