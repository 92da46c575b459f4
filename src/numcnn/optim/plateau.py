"""``ReduceLROnPlateau``: cut the learning rate when a metric stops improving, as
``torch.optim.lr_scheduler.ReduceLROnPlateau``."""
from __future__ import annotations

import math
from collections.abc import Mapping

from ..validation import check_int, check_real
from .optimizer import Optimizer, export_value, import_value

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau:
    """Multiply each group's lr by ``factor`` after ``patience`` epochs without improvement.

    ``step(metrics)`` is called once per epoch with the monitored value (e.g. the validation
    loss). A value is an improvement over the best so far when, for ``mode='min'``,
    ``value < best·(1 − threshold)`` (``threshold_mode='rel'``) or ``value < best − threshold``
    (``'abs'``); mirrored for ``mode='max'``. After more than ``patience`` bad epochs in a row
    the lr becomes ``max(lr·factor, min_lr)`` (unchanged if that changes it by less than
    ``eps``), then ``cooldown`` epochs pass before bad epochs count again.

    Parameters
    ----------
    optimizer : Optimizer
    mode : 'min' or 'max', default 'min'
    factor : float, default 0.1 (must be < 1)
    patience : int, default 10
    threshold : float, default 1e-4
    threshold_mode : 'rel' or 'abs', default 'rel'
    cooldown : int, default 0
    min_lr : float or list of float, default 0
    eps : float, default 1e-8

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> w = nc.tensor(np.zeros(1), requires_grad=True)
    >>> opt = nc.optim.SGD([w], lr=1.0)
    >>> sched = nc.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    >>> for loss in [1.0, 1.0, 1.0]:
    ...     sched.step(loss)
    >>> sched.get_last_lr()
    [0.1]
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr=0, eps: float = 1e-8) -> None:
        name = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a numcnn.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        factor = check_real(factor, "factor", name, low=0)
        if factor >= 1.0:
            raise ValueError(f"{name}: Factor should be < 1.0, got factor={factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"{name}: mode {mode!r} is unknown! (expected 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{name}: threshold mode {threshold_mode!r} is unknown! "
                             "(expected 'rel' or 'abs')")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"{name}: expected {n} min_lrs, got {len(min_lr)}")
            self.min_lrs = [check_real(v, "min_lr", name, low=0) for v in min_lr]
        else:
            self.min_lrs = [check_real(min_lr, "min_lr", name, low=0)] * n
        self.optimizer = optimizer
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = factor
        self.patience = check_int(patience, "patience", name, minimum=0)
        self.threshold = check_real(threshold, "threshold", name, low=0)
        self.cooldown = check_int(cooldown, "cooldown", name, minimum=0)
        self.eps = check_real(eps, "eps", name, low=0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [float(g["lr"]) for g in optimizer.param_groups]

    def is_better(self, a: float, best: float) -> bool:
        """Whether ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            edge = best * (1.0 - self.threshold) if self.threshold_mode == "rel" \
                else best - self.threshold
            return a < edge
        edge = best * (self.threshold + 1.0) if self.threshold_mode == "rel" \
            else best + self.threshold
        return a > edge

    def step(self, metrics, epoch=None) -> None:
        """Record one epoch's ``metrics`` (a number or a 1-element tensor/array)."""
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0   # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def get_last_lr(self) -> list[float]:
        """The learning rates after the last :meth:`step`, per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Every attribute except the optimizer, as JSON-able values."""
        return {k: export_value(v) for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore what :meth:`state_dict` saved."""
        own = self.state_dict()
        unknown = sorted(set(state_dict) - set(own))
        if unknown:
            raise ValueError(f"ReduceLROnPlateau.load_state_dict: unknown keys {unknown}")
        self.__dict__.update({k: import_value(v, getattr(self, k)) for k, v in state_dict.items()})

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor}, "
                f"patience={self.patience}, best={self.best}, lr={self._last_lr})")
