"""The optimizer base class: parameter groups, per-parameter state, ``step`` and checkpoints.

An optimizer holds ``param_groups``, a list of dicts each with a ``"params"`` list and that group's
options (``lr`` and the rest), exactly as ``torch.optim`` does. Subclasses say which options they
take (``defaults``), how to check them, and how to update one parameter from its gradient; the base
class does the rest:

* parameters are any objects with ``.data`` (a floating-point ndarray), ``.grad`` (an ndarray of
  the same shape, or None) and ``.requires_grad``, such as :class:`numcnn.Tensor`;
* ``step()`` skips every parameter whose ``.grad`` is None and updates the others **in place**
  (``param.data`` stays the same array object, so views and references stay valid), in the
  parameter's own dtype (float32 stays float32);
* ``state_dict()`` returns only JSON-able scalars, lists and dicts plus ndarrays (copies), with
  parameters named by their position, so a checkpoint can be stored without pickle;
  ``load_state_dict()`` checks and restores it, and training then resumes bit for bit.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from ..validation import check_int

__all__ = ["Optimizer"]


def export_value(value):
    """A JSON-able copy of ``value``: tuples become lists, NumPy scalars Python numbers, arrays
    are copied."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [export_value(v) for v in value]
    if isinstance(value, dict):
        return {k: export_value(v) for k, v in value.items()}
    return value


def import_value(value, like=None):
    """Undo what a checkpoint round trip does to an option: arrays and NumPy scalars become
    Python lists and numbers, and a list becomes a tuple where the current value ``like`` is one
    (``betas``)."""
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        items = [import_value(v) for v in value]
        return tuple(items) if isinstance(like, tuple) else items
    if isinstance(value, dict):
        return {k: import_value(v, like.get(k) if isinstance(like, dict) else None)
                for k, v in value.items()}
    return value


class _ParamState(MutableMapping):
    """Per-parameter state dicts, keyed by the parameter object itself (by identity)."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[Any, dict]] = {}

    def __getitem__(self, param) -> dict:
        return self._items[id(param)][1]

    def __setitem__(self, param, value: dict) -> None:
        self._items[id(param)] = (param, value)

    def __delitem__(self, param) -> None:
        del self._items[id(param)]

    def __contains__(self, param) -> bool:
        return id(param) in self._items

    def __iter__(self) -> Iterator:
        return (param for param, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<state of {len(self)} parameters>"


# ----------------------------------------------------------------------------------------------
# the base class
# ----------------------------------------------------------------------------------------------
class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``zero_grad`` and checkpoints.

    Parameters
    ----------
    params : iterable of Tensor or iterable of dict
        The parameters to optimize, or parameter groups: dicts with a ``"params"`` entry (a tensor
        or an iterable of tensors) and any options that override ``defaults`` for that group.
    defaults : dict
        Every option the optimizer takes, with its default value.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group: ``"params"`` (a list of tensors) and every option of the optimizer.
        Schedulers change ``"lr"`` (and ``"momentum"`` or ``"betas"``) here between steps.
    state : mapping
        ``state[param]`` is the dict of that parameter's buffers (``"momentum_buffer"``,
        ``"exp_avg"``, ``"step"``, ...), created on its first update.
    defaults : dict
        The options given to the constructor.

    Notes
    -----
    A subclass sets ``_array_state`` and ``_scalar_state`` (the names of its per-parameter
    buffers) and ``_required_state`` (those a non-empty state must hold), and implements
    ``_check_options(options, where)`` (check and normalize a group's options in place),
    ``_hyper(group)`` (the options as plain Python values for one step) and
    ``_update(param, grad, state, hyper)`` (update the ndarray ``param`` in place).
    """

    _array_state: tuple[str, ...] = ()
    _scalar_state: tuple[str, ...] = ()
    _required_state: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict) -> None:
        name = type(self).__name__
        self.defaults = dict(defaults)
        self._check_options(self.defaults, name)
        self.param_groups: list[dict] = []
        self.state: MutableMapping = _ParamState()
        if _is_tensor(params) or isinstance(params, dict):
            raise TypeError(
                f"{name}: params must be an iterable of tensors or of dicts (parameter groups), "
                f"got a single {type(params).__name__}; wrap it in a list")
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: params must be an ordered collection (list, tuple, "
                            f"generator), got a {type(params).__name__} whose order varies")
        if not isinstance(params, Iterable):
            raise TypeError(f"{name}: params must be an iterable of tensors or of dicts, "
                            f"got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: params is empty; give at least one parameter to optimize")
        if all(isinstance(p, dict) for p in params):
            groups = params
        elif any(isinstance(p, dict) for p in params):
            raise TypeError(f"{name}: params mixes tensors and dicts; give either tensors or "
                            f"parameter groups (dicts with a 'params' entry)")
        else:
            groups = [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    # --- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group.

        Parameters
        ----------
        param_group : dict
            ``"params"`` (a tensor or an ordered iterable of tensors) and any options of the
            optimizer; options not given take their value from ``defaults``. Other keys (a
            group name, say) are kept as they are, as in ``torch.optim``.

        Raises
        ------
        TypeError
            If ``param_group`` is not a dict or holds something other than floating-point
            tensors, or an option has the wrong type.
        ValueError
            If ``"params"`` is missing, a parameter already belongs to a group, or an option is
            out of range.
        """
        name = type(self).__name__
        where = f"{name} param group {len(self.param_groups)}"
        if not isinstance(param_group, dict):
            raise TypeError(f"{where}: a parameter group must be a dict, "
                            f"got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{where}: the dict has no 'params' entry")
        params = param_group["params"]
        if _is_tensor(params):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{where}: params must be an ordered collection, got a "
                            f"{type(params).__name__} whose order varies")
        elif isinstance(params, Iterable):
            params = list(params)
        else:
            raise TypeError(f"{where}: params must be a tensor or an iterable of tensors, "
                            f"got {type(params).__name__}")
        for i, p in enumerate(params):
            if not _is_tensor(p):
                raise TypeError(f"{where}: params[{i}] must be a tensor (an object with an "
                                f"ndarray .data), got {type(p).__name__}")
            if not np.issubdtype(p.data.dtype, np.floating):
                raise TypeError(f"{where}: params[{i}] has dtype {p.data.dtype}; only "
                                f"floating-point parameters can be optimized")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError(f"{where}: some parameters appear more than once (in this group or "
                             f"in an earlier one); each parameter may belong to one group only")
        group = {k: v for k, v in param_group.items() if k != "params"}
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group, where)
        group["params"] = params
        self.param_groups.append(group)

    # --- gradients and steps ------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient.

        Parameters
        ----------
        set_to_none : bool, default True
            Set ``.grad`` to None (the next step skips the parameter unless a backward pass
            fills it again); if False, fill the existing gradient arrays with zeros in place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient, in place.

        Parameters
        ----------
        closure : callable, optional
            Called first (it should recompute the loss and the gradients); its result is returned.

        Returns
        -------
        The closure's result, or None.
        """
        loss = closure() if closure is not None else None
        for gi, group in enumerate(self.param_groups):
            hyper = self._hyper(group)
            for pi, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                data = p.data
                grad = np.asarray(grad)
                if grad.shape != data.shape:
                    raise ValueError(
                        f"{type(self).__name__}.step: param group {gi} params[{pi}] has shape "
                        f"{data.shape} but its grad has shape {grad.shape}")
                if grad.dtype != data.dtype:
                    grad = grad.astype(data.dtype)
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                self._update(data, grad, state, hyper)
                p._version_counter.value += 1   # an in-place change: graphs that saved p see it
        return loss

    # --- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The optimizer's state, made only of JSON-able values and ndarray copies.

        Returns
        -------
        dict
            ``{"state": {index: {"step": int, "exp_avg": ndarray, ...}}, "param_groups":
            [{"lr": ..., ..., "params": [index, ...]}]}``: parameters are numbered in the order
            of the groups and of each group's ``"params"``, as in ``torch.optim``; only
            parameters that have state appear in ``"state"``. Arrays are copies, so a later
            ``step()`` does not change a saved state.
        """
        groups, state, index = [], {}, 0
        for group in self.param_groups:
            packed = {k: export_value(v) for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            for p in group["params"]:
                if self.state.get(p):
                    state[index] = {k: export_value(v) for k, v in self.state[p].items()}
                index += 1
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore a state made by :meth:`state_dict` (possibly after a checkpoint round trip).

        The optimizer must have been built on the same parameters, in the same groups and order.
        Options are taken from the saved groups; buffers are copied into the parameters' dtype.
        Nothing changes if a check fails.

        Raises
        ------
        ValueError
            If the number of groups, the number of parameters in a group, a state index, a
            buffer's shape or name, or an option does not fit this optimizer.
        """
        name = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"{name}: expected a dict with keys 'state' and 'param_groups', got "
                            f"{type(state_dict).__name__}")
        if set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}: expected a dict with keys 'state' and 'param_groups', got "
                             f"keys {sorted(state_dict)}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the state has {len(saved_groups)} parameter groups but "
                             f"the optimizer has {len(self.param_groups)}")
        by_index: dict[int, Any] = {}
        new_groups = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise ValueError(f"{name}: param_groups[{gi}] must be a dict with a 'params' entry")
            indices = [int(i) for i in np.asarray(saved["params"]).reshape(-1).tolist()]
            if len(indices) != len(group["params"]):
                raise ValueError(f"{name}: param group {gi} has {len(indices)} parameters in the "
                                 f"state but {len(group['params'])} in the optimizer")
            for i, p in zip(indices, group["params"]):
                if i in by_index:
                    raise ValueError(f"{name}: parameter index {i} appears twice in param_groups")
                by_index[i] = p
            new = {k: import_value(v, group.get(k)) for k, v in saved.items() if k != "params"}
            for key, value in group.items():
                new.setdefault(key, value)
            self._check_options(new, f"{name}: param group {gi}")
            new["params"] = group["params"]
            new_groups.append(new)
        new_state = {}
        for key, saved in dict(state_dict["state"]).items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: state key {key!r} is not a parameter index") from None
            if index not in by_index:
                raise ValueError(f"{name}: state given for parameter index {index}, but the "
                                 f"groups hold indices {sorted(by_index)}")
            param = by_index[index]
            new_state[id(param)] = (param, self._import_state(saved, param, f"{name}: state "
                                                                           f"[{index}]"))
        for group, new in zip(self.param_groups, new_groups):
            group.clear()  # update in place: references to the group dicts stay valid
            group.update(new)
        self.state = _ParamState()
        for param, entry in new_state.values():
            self.state[param] = entry

    def _import_state(self, saved, param, where: str) -> dict:
        if not isinstance(saved, Mapping):
            raise TypeError(f"{where}: expected a dict of buffers, got {type(saved).__name__}")
        entry: dict[str, np.ndarray | int] = {}
        for key, value in saved.items():
            if key in self._array_state:
                if value is None:
                    continue
                arr = np.asarray(value)
                if arr.shape != param.data.shape:
                    raise ValueError(f"{where}: {key!r} has shape {arr.shape} but the parameter "
                                     f"has shape {param.data.shape}")
                entry[key] = np.array(arr, dtype=param.data.dtype, copy=True)
            elif key in self._scalar_state:
                entry[key] = check_int(import_value(value), key, where, minimum=0)
            else:
                raise ValueError(f"{where}: unknown buffer {key!r}; {type(self).__name__} keeps "
                                 f"{sorted(self._array_state + self._scalar_state)}")
        missing = [key for key in self._required_state if key not in entry]
        if entry and missing:
            raise ValueError(f"{where}: buffers {missing} are missing; {type(self).__name__} "
                             f"needs {list(self._required_state)}")
        return entry

    # --- for subclasses -----------------------------------------------------------------------
    def _check_options(self, options: dict, where: str) -> None:
        """Check (and normalize in place) one group's options; ``where`` starts each message."""
        raise NotImplementedError

    def _hyper(self, group: dict):
        """The group's options as plain Python values, computed once per group and step."""
        raise NotImplementedError

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, hyper) -> None:
        """Update ``param`` in place from ``grad`` (same shape and dtype) and its ``state``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _is_tensor(obj) -> bool:
    return isinstance(getattr(obj, "data", None), np.ndarray) and hasattr(obj, "grad")
