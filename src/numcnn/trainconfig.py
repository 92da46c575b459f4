"""The settings of a training run: :class:`TrainConfig`, its checks and its defaults.

:func:`numcnn.train.fit` trains as a TrainConfig says, and :mod:`numcnn.rundir` stores it with
the run and compares it with the settings of a resume; both import it from here, below them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import data, models
from .validation import is_int, is_real

DATASETS = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "onecycle", "step", "none")
DTYPES = {"float32": np.float32, "float64": np.float64}

#: SGD's (Nesterov) momentum when a config gives none.
DEFAULT_MOMENTUM = 0.9

#: Settings that only some optimizers take -> those optimizers (Adam and AdamW have betas,
#: not a momentum).
OPTIMIZER_ONLY = {"momentum": ("sgd",)}


class ModelDefaults(NamedTuple):
    lr: dict[str, float]  # per optimizer
    augment: bool


#: Per-model defaults that reach the accuracy targets (see README).
MODEL_DEFAULTS = {
    "lenet5": ModelDefaults(lr={"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}, augment=False),
    "convnet": ModelDefaults(lr={"sgd": 0.05, "adam": 2e-3, "adamw": 2e-3}, augment=True),
}
_OTHER_MODEL = ModelDefaults(lr={}, augment=False)
_OTHER_LR = 0.01


@dataclass
class TrainConfig:
    """Everything that defines a training run (the ``numcnn train`` flags)."""

    model: str = "lenet5"
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None            # None: the model's default
    optimizer: str = "sgd"
    momentum: float | None = None      # sgd only; None: DEFAULT_MOMENTUM
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    seed: int = 0
    out: str = "runs/default"
    resume: bool = False
    data_dir: str | None = None
    limit: int | None = None
    test_limit: int | None = None
    dtype: str = "float32"
    augment: bool | None = None        # None: the model's default
    model_options: dict = field(default_factory=dict)
    progress: bool | None = None       # None: a bar only on a terminal
    download: bool = True
    distributed: bool = False          # data parallel over MPI, see numcnn.distributed
    overwrite: bool = False            # replace a run already in ``out``
    patience: int | None = None        # stop after this many epochs without a better test_acc
    log_lr: bool = False               # record the learning rate of every step in the metrics

    def validate(self) -> None:
        if self.model not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {sorted(models.MODELS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {sorted(DATASETS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        for name, takers in OPTIMIZER_ONLY.items():
            value = getattr(self, name)
            if value is not None and self.optimizer not in takers:
                raise ValueError(f"{name}={value!r} applies to optimizer "
                                 f"{' or '.join(map(repr, takers))} only, not "
                                 f"{self.optimizer!r}, which takes no {name}; leave {name} None")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose from {SCHEDULERS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose from {sorted(DTYPES)}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("limit", "test_limit", "patience"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.lr is not None and not (is_real(self.lr) and self.lr > 0
                                        and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (is_real(value) and 0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if not isinstance(self.model_options, dict):
            raise TypeError(f"model_options must be a dict of the model's keyword arguments, "
                             f"got {self.model_options!r}")
        if not isinstance(self.out, (str, Path)) or str(self.out) == "":
            raise ValueError(f"out must name a folder, got {self.out!r}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: --resume continues the "
                             "run in the folder, --overwrite replaces it")

    def resolved(self) -> TrainConfig:
        """This config with the defaults filled in: the model's ``lr`` and ``augment``, and
        :data:`DEFAULT_MOMENTUM` for SGD."""
        defaults = MODEL_DEFAULTS.get(self.model, _OTHER_MODEL)
        lr = self.lr if self.lr is not None else defaults.lr.get(self.optimizer, _OTHER_LR)
        augment = defaults.augment if self.augment is None else self.augment
        momentum = self.momentum
        if momentum is None and self.optimizer in OPTIMIZER_ONLY["momentum"]:
            momentum = DEFAULT_MOMENTUM
        return dataclasses.replace(self, lr=lr, augment=bool(augment), momentum=momentum)

    @classmethod
    def from_saved(cls, saved: dict) -> TrainConfig:
        """The config of a stored run (``config.json`` or a checkpoint's ``train_config``).

        Entries that are not settings are skipped, and so is a setting the run's optimizer
        does not take: runs recorded ``momentum: 0.9`` whatever the optimizer, and one that
        does not take it never used it.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        settings = {k: v for k, v in saved.items() if k in names}
        for name, takers in OPTIMIZER_ONLY.items():
            if settings.get("optimizer", cls.optimizer) not in takers:
                settings.pop(name, None)
        return cls(**settings)
