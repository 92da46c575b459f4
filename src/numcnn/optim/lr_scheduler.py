"""Learning-rate schedulers, computing the same sequences as ``torch.optim.lr_scheduler``.

A scheduler changes ``group["lr"]`` of each of its optimizer's parameter groups when its
:meth:`~LRScheduler.step` is called, once per epoch or once per batch, after
``optimizer.step()``. Building one sets the learning rates for step 0 at once. Each keeps the
formulas of its PyTorch counterpart, recursive ones included, so the sequences match to the last
bit.

Resuming: build the optimizer and the scheduler as for a fresh run, then call
``optimizer.load_state_dict(...)`` and ``scheduler.load_state_dict(...)``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypedDict

from ..validation import check_bool, check_int, check_real
from .optimizer import Optimizer, export_value, import_value

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StepLR",
]


class LRScheduler:
    """Base class of the schedulers.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose parameter groups' ``"lr"`` the scheduler sets.

    Attributes
    ----------
    optimizer : Optimizer
    last_epoch : int
        How many times :meth:`step` has been called since construction (0 right after it).
    base_lrs : list of float
        Each group's ``"initial_lr"``, set to its ``"lr"`` at construction unless already there.

    Notes
    -----
    A subclass implements ``_compute_lrs()``, the learning rates for ``self.last_epoch`` (just
    incremented); ``self._is_initial`` is True during the call made by the constructor.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a numcnn.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self) -> None:
        """Advance one epoch (or batch) and set each group's ``"lr"`` for it."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise ValueError(f"{type(self).__name__}.step: the optimizer has {len(groups)} "
                             f"parameter groups but the scheduler was built for "
                             f"{len(self.base_lrs)}")
        self._step_count += 1
        self.last_epoch += 1
        lrs = self._compute_lrs()
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last :meth:`step` (or by the constructor), per group."""
        return list(self._last_lr)

    def _compute_lrs(self) -> list[float]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Every attribute except the optimizer, as JSON-able values (lists, numbers, strings)."""
        return {key: export_value(value) for key, value in vars(self).items()
                if key not in ("optimizer", "_is_initial")}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore the attributes saved by :meth:`state_dict` (after a checkpoint round trip too).

        Raises
        ------
        ValueError
            If ``state_dict`` holds a key this scheduler does not have (it was saved from another
            kind of scheduler) or its ``base_lrs`` do not fit the optimizer's groups.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}: expected a dict, got {type(state_dict).__name__}")
        own = self.state_dict()
        unknown = sorted(set(state_dict) - set(own))
        if unknown:
            raise ValueError(f"{name}: unknown keys {unknown}; this scheduler saves "
                             f"{sorted(own)} (was the state saved from another scheduler?)")
        values = {key: import_value(value, getattr(self, key))
                  for key, value in state_dict.items()}
        for key in ("base_lrs", "_last_lr"):
            if key in values and len(values[key]) != len(self.optimizer.param_groups):
                raise ValueError(f"{name}: {key} has {len(values[key])} entries but the optimizer "
                                 f"has {len(self.optimizer.param_groups)} parameter groups")
        for key in ("last_epoch", "_step_count"):
            if key in values:
                values[key] = check_int(values[key], key, name, minimum=-1)
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    .. math:: \eta_t = \eta_0\,\gamma^{\lfloor t / \text{step\_size} \rfloor}

    computed recursively (:math:`\eta_t = \gamma\,\eta_{t-1}` when ``t`` is a multiple of
    ``step_size``) as ``torch.optim.lr_scheduler.StepLR`` does.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
        Period of the decay, ``>= 1``.
    gamma : float, default 0.1
        Multiplicative factor, ``> 0``.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> from numcnn.optim import SGD
    >>> from numcnn.optim.lr_scheduler import StepLR
    >>> opt = SGD([nc.tensor(np.zeros(2), requires_grad=True)], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(sched.get_last_lr()[0])
    ...     opt.step()
    ...     sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_int(step_size, "step_size", "StepLR", minimum=1)
        self.gamma = check_real(gamma, "gamma", "StepLR", low=0, low_open=True)
        super().__init__(optimizer)

    def _compute_lrs(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]  # eta_t = gamma * eta_{t-1}


class MultiStepLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` at each milestone epoch.

    .. math:: \eta_t = \eta_0\,\gamma^{\#\{m \in \text{milestones} : m \le t\}}

    computed recursively as ``torch.optim.lr_scheduler.MultiStepLR`` does; a milestone listed
    ``n`` times multiplies by :math:`\gamma^n`.

    Parameters
    ----------
    optimizer : Optimizer
    milestones : iterable of int
        Epochs (``>= 1``) at which to decay, in any order.
    gamma : float, default 0.1
        Multiplicative factor, ``> 0``.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1) -> None:
        if not isinstance(milestones, Iterable) or isinstance(milestones, (str, bytes)):
            raise TypeError(f"MultiStepLR: milestones must be an iterable of ints, "
                            f"got {milestones!r}")
        self.milestones = sorted(check_int(m, "each milestone", "MultiStepLR", minimum=1)
                                 for m in milestones)
        self.gamma = check_real(gamma, "gamma", "MultiStepLR", low=0, low_open=True)
        super().__init__(optimizer)

    def _compute_lrs(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        hits = self.milestones.count(self.last_epoch)
        if hits == 0:
            return lrs
        return [lr * self.gamma ** hits for lr in lrs]  # eta_t = gamma^n * eta_{t-1}


class ExponentialLR(LRScheduler):
    r"""Multiply the learning rate by ``gamma`` every epoch: :math:`\eta_t = \eta_0\,\gamma^t`.

    Computed recursively (:math:`\eta_t = \gamma\,\eta_{t-1}`) as
    ``torch.optim.lr_scheduler.ExponentialLR`` does.

    Parameters
    ----------
    optimizer : Optimizer
    gamma : float
        Multiplicative factor, ``> 0``.
    """

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = check_real(gamma, "gamma", "ExponentialLR", low=0, low_open=True)
        super().__init__(optimizer)

    def _compute_lrs(self) -> list[float]:
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        if self._is_initial:
            return lrs
        return [lr * self.gamma for lr in lrs]  # eta_t = gamma * eta_{t-1}


class LinearLR(LRScheduler):
    r"""Scale the learning rate by a factor going linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs, then keep it.

    .. math::

        \eta_t = \eta_0 \left(s + (e - s)\,\frac{\min(t, T)}{T}\right)

    computed recursively, as ``torch.optim.lr_scheduler.LinearLR`` does:
    :math:`\eta_0 \leftarrow s\,\eta_0` and, for :math:`1 \le t \le T`,

    .. math::

        \eta_t = \eta_{t-1}\left(1 + \frac{e - s}{T s + (t - 1)(e - s)}\right)

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float, default 1/3
        Factor :math:`s` at epoch 0, in ``(0, 1]``.
    end_factor : float, default 1
        Factor :math:`e` from epoch ``total_iters`` on, in ``[0, 1]``.
    total_iters : int, default 5
        :math:`T`, the number of epochs of the ramp, ``>= 1``.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5) -> None:
        self.start_factor = check_real(start_factor, "start_factor", "LinearLR", low=0, high=1,
                                       low_open=True)
        self.end_factor = check_real(end_factor, "end_factor", "LinearLR", low=0, high=1)
        self.total_iters = check_int(total_iters, "total_iters", "LinearLR", minimum=1)
        super().__init__(optimizer)

    def _compute_lrs(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [group["lr"] for group in groups]
        s, e, total = self.start_factor, self.end_factor, self.total_iters
        return [group["lr"] * (1.0 + (e - s) / (total * s + (self.last_epoch - 1) * (e - s)))
                for group in groups]


class CosineAnnealingLR(LRScheduler):
    r"""Anneal the learning rate along a half cosine from its initial value to ``eta_min``.

    .. math::

        \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
            \left(1 + \cos\frac{t\pi}{T_{\max}}\right)

    computed with the recursive form of ``torch.optim.lr_scheduler.CosineAnnealingLR`` (so that
    the sequences agree to the bit):

    .. math::

        \eta_t = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
            \frac{1 + \cos(t\pi / T_{\max})}{1 + \cos((t - 1)\pi / T_{\max})}

    and :math:`\eta_t = \eta_{t-1} + \tfrac12(\eta_0 - \eta_{\min})(1 - \cos(\pi / T_{\max}))`
    where that quotient is 0/0 (:math:`t - 1 - T_{\max}` a multiple of :math:`2T_{\max}`). Past
    :math:`T_{\max}` the cosine continues: the learning rate rises again, as in PyTorch.

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Half period of the cosine, in epochs (or batches), ``>= 1``.
    eta_min : float, default 0
        Lowest learning rate, ``>= 0``.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = check_int(T_max, "T_max", "CosineAnnealingLR", minimum=1)
        self.eta_min = check_real(eta_min, "eta_min", "CosineAnnealingLR", low=0)
        super().__init__(optimizer)

    def _compute_lrs(self) -> list[float]:
        groups = self.optimizer.param_groups
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
                * (group["lr"] - eta_min) + eta_min for group in groups]


class _Phase(TypedDict):
    """A phase of :class:`OneCycleLR`: the step it ends at, and the group keys holding the
    learning rates and momenta it anneals from and to (a dict, so that it saves as JSON)."""

    end_step: float
    start_lr: str
    end_lr: str
    start_momentum: str
    end_momentum: str


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy: warm the learning rate up to ``max_lr``, then anneal it far below
    its start, cycling the momentum the other way (``torch.optim.lr_scheduler.OneCycleLR``).

    With :math:`\eta_{\text{init}} = \text{max\_lr} / \text{div\_factor}` and
    :math:`\eta_{\min} = \eta_{\text{init}} / \text{final\_div\_factor}`, the schedule is split
    into phases ending at steps :math:`p\,N - 1` and :math:`N - 1` (two-phase) or
    :math:`p\,N - 1`, :math:`2 p\,N - 2` and :math:`N - 1` (three-phase), where :math:`N` is
    ``total_steps`` and :math:`p` is ``pct_start``. Within a phase from step :math:`s_0` to
    :math:`s_1` going from value :math:`a` to :math:`b`, with :math:`x = (t - s_0) / (s_1 - s_0)`:

    .. math::

        \text{cos:}\quad \eta_t = b + \tfrac12 (a - b)(1 + \cos \pi x) \qquad
        \text{linear:}\quad \eta_t = (b - a)\,x + a

    Phases (learning rate; momentum): :math:`\eta_{\text{init}} \to \text{max\_lr}`,
    :math:`\text{max\_momentum} \to \text{base\_momentum}`; then
    :math:`\text{max\_lr} \to \eta_{\min}`, back to :math:`\text{max\_momentum}`. In three-phase
    mode: up to ``max_lr``, back down to :math:`\eta_{\text{init}}` (momentum back up), then
    down to :math:`\eta_{\min}` (momentum at ``max_momentum``).

    The momentum cycled is ``group["momentum"]`` for optimizers that have one (SGD: setting it
    on turns momentum on, as in PyTorch) and ``group["betas"][0]`` for Adam and AdamW.

    Parameters
    ----------
    optimizer : Optimizer
    max_lr : float or list of float
        Peak learning rate, ``> 0``, one for all groups or one per group.
    total_steps : int, optional
        Number of steps :math:`N` of the cycle, ``>= 1``; else ``epochs * steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
        Used when ``total_steps`` is not given; both ``>= 1``.
    pct_start : float, default 0.3
        Fraction of the cycle spent raising the learning rate, in ``[0, 1]``.
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    div_factor : float, default 25
        ``max_lr / div_factor`` is the starting learning rate; ``> 0``.
    final_div_factor : float, default 1e4
        The starting learning rate divided by this is the final one; ``> 0``.
    three_phase : bool, default False
        Use the three-phase schedule of the original paper.
    cycle_momentum : bool, default True
        Cycle the momentum (or ``beta1``) inversely to the learning rate.
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
        Momentum at the learning rate's peak and at its ends, ``>= 0`` (and ``< 1`` for betas).

    Raises
    ------
    ValueError
        From :meth:`step`, when stepping past ``total_steps``.

    Notes
    -----
    Where a phase is a single step long (:math:`s_1 = s_0`), PyTorch divides by zero; here the
    phase's end value is used.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, cycle_momentum: bool = True,
                 base_momentum=0.85, max_momentum=0.95) -> None:
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a numcnn.optim.Optimizer, "
                            f"got {type(optimizer).__name__}")
        if total_steps is not None:
            self.total_steps = check_int(total_steps, "total_steps", name, minimum=1)
        elif epochs is not None and steps_per_epoch is not None:
            epochs = check_int(epochs, "epochs", name, minimum=1)
            steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", name, minimum=1)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError(f"{name}: give either total_steps or both epochs and "
                             f"steps_per_epoch, got total_steps={total_steps!r}, "
                             f"epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}")
        pct_start = float(check_real(pct_start, "pct_start", name, low=0, high=1))
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', "
                             f"got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        div_factor = check_real(div_factor, "div_factor", name, low=0, low_open=True)
        final_div_factor = check_real(final_div_factor, "final_div_factor", name, low=0,
                                      low_open=True)
        self.three_phase = check_bool(three_phase, "three_phase", name)
        n = self.total_steps
        self.phases: list[_Phase]
        if self.three_phase:
            self.phases = [
                {"end_step": float(pct_start * n) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum",
                 "end_momentum": "base_momentum"},
                {"end_step": float(2 * pct_start * n) - 2, "start_lr": "max_lr",
                 "end_lr": "initial_lr", "start_momentum": "base_momentum",
                 "end_momentum": "max_momentum"},
                {"end_step": n - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
                 "start_momentum": "max_momentum", "end_momentum": "max_momentum"},
            ]
        else:
            self.phases = [
                {"end_step": float(pct_start * n) - 1, "start_lr": "initial_lr",
                 "end_lr": "max_lr", "start_momentum": "max_momentum",
                 "end_momentum": "base_momentum"},
                {"end_step": n - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                 "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            ]
        groups = optimizer.param_groups
        max_lrs = _per_group(name, "max_lr", max_lr, len(groups), low=0, low_open=True)
        self.cycle_momentum = check_bool(cycle_momentum, "cycle_momentum", name)
        momenta: list[tuple[float, float]] = []  # (max, base) per group when cycling momentum
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"{name}: cycle_momentum=True needs an optimizer with a "
                                 f"'momentum' or 'betas' option, {type(optimizer).__name__} "
                                 f"has neither; pass cycle_momentum=False")
            self.use_beta1 = "betas" in optimizer.defaults
            limits = {"low": 0, "high": 1, "high_open": True} if self.use_beta1 else {"low": 0}
            momenta = list(zip(
                _per_group(name, "max_momentum", max_momentum, len(groups), **limits),
                _per_group(name, "base_momentum", base_momentum, len(groups), **limits)))
        for group, group_max_lr in zip(groups, max_lrs):
            group["initial_lr"] = group_max_lr / div_factor
            group["max_lr"] = group_max_lr
            group["min_lr"] = group["initial_lr"] / final_div_factor
        for group, (max_mom, base_mom) in zip(groups, momenta):
            if self.use_beta1:
                group["betas"] = (max_mom, *group["betas"][1:])
            else:
                group["momentum"] = max_mom
            group["max_momentum"] = max_mom
            group["base_momentum"] = base_mom
        super().__init__(optimizer)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _compute_lrs(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR.step: stepped {t} times but total_steps is "
                             f"{self.total_steps}; build the scheduler with more steps")
        phase, start_step = self._phase_at(t)
        span = phase["end_step"] - start_step
        pct = (t - start_step) / span if span != 0 else 1.0
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
            if self.cycle_momentum:
                momentum = self._anneal(group[phase["start_momentum"]],
                                        group[phase["end_momentum"]], pct)
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs

    def _phase_at(self, t: int) -> tuple[_Phase, float]:
        """The phase that step ``t`` falls in (the last one past its end) and its first step."""
        start_step = 0.0
        for phase in self.phases[:-1]:
            if t <= phase["end_step"]:
                return phase, start_step
            start_step = phase["end_step"]
        return self.phases[-1], start_step


def _per_group(where: str, name: str, value, n_groups: int, **limits) -> list[float]:
    """One checked number per parameter group from a number or a list of ``n_groups`` numbers."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(f"{where}: {name} has {len(value)} values but the optimizer has "
                             f"{n_groups} parameter groups")
        return [check_real(v, f"{name}[{i}]", where, **limits) for i, v in enumerate(value)]
    return [check_real(value, name, where, **limits)] * n_groups


from .plateau import ReduceLROnPlateau
