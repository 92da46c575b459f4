"""Optimizers and learning-rate schedulers with the update rules of ``torch.optim``.

:class:`SGD` (momentum, dampening, Nesterov, weight decay), :class:`Adam` and :class:`AdamW`
(AMSGrad, L2 or decoupled weight decay) and :class:`RMSprop` update parameters in place, in
their own dtype, from their ``.grad``; :mod:`numcnn.optim.lr_scheduler` holds the schedulers
(:class:`~.lr_scheduler.StepLR`, :class:`~.lr_scheduler.MultiStepLR`,
:class:`~.lr_scheduler.ExponentialLR`, :class:`~.lr_scheduler.LinearLR`,
:class:`~.lr_scheduler.CosineAnnealingLR`, :class:`~.lr_scheduler.OneCycleLR`,
:class:`~.lr_scheduler.ReduceLROnPlateau`). Optimizers and schedulers save and restore their
state as plain dicts of JSON-able values and ndarrays.

>>> import numpy as np, numcnn as nc
>>> from numcnn import optim
>>> w = nc.tensor(np.array([3.0, -1.0]), requires_grad=True)
>>> opt = optim.SGD([w], lr=0.1)
>>> for _ in range(50):
...     opt.zero_grad()
...     (w * w).sum().backward()      # minimize |w|^2
...     opt.step()
>>> bool(np.abs(w.data).max() < 1e-4)
True
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
