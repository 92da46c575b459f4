"""``Module``: the base class of layers and models, as ``torch.nn.Module``.

A module registers what is assigned to it: a :class:`Parameter` goes to its parameters, a
``Module`` to its children, and names declared with :meth:`Module.register_buffer` hold plain
ndarrays (state that is saved but not learned, such as BatchNorm's running statistics). Every
walk (``parameters()``, ``state_dict()``, ``train()``...) visits them in registration order and
names them with dotted paths like ``features.0.weight``, exactly as PyTorch does, so state dicts
map one to one onto an equivalent torch model.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..validation import check_float_dtype
from .hooks import RemovableHandle
from .parameter import Parameter
from .state import IncompatibleKeys, load_state

__all__ = ["Module", "config_repr", "register_serializer"]


_HOOK_TABLES = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
                "_forward_hooks_with_kwargs")


#: The functions behind :meth:`Module.save` and :meth:`Module.load`, filled by
#: :func:`register_serializer`: the file format lives in :mod:`numcnn.io`, which imports ``nn``,
#: so ``nn`` must not import it back.
_SERIALIZER: dict[str, Callable[..., Any]] = {}


def register_serializer(save: Callable[..., Any], load: Callable[..., Any]) -> None:
    """Install ``save(module, path)`` and ``load(cls, path, *args, **kwargs)`` as the
    implementations of :meth:`Module.save` and :meth:`Module.load`.

    :mod:`numcnn.io` registers its own when it is imported (``import numcnn`` imports it).
    """
    for name, function in (("save", save), ("load", load)):
        if not callable(function):
            raise TypeError(f"register_serializer: {name} must be callable, got {function!r}")
    _SERIALIZER.update(save=save, load=load)


def _serializer(op: str) -> Callable[..., Any]:
    try:
        return _SERIALIZER[op]
    except KeyError:
        raise RuntimeError(f"Module.{op} needs numcnn.io, which registers the file format when "
                           "it is imported: import numcnn.io (import numcnn does)") from None


def config_repr(config: Mapping[str, Any]) -> str:
    """``extra_repr`` text listing a layer's configuration: ``key=value`` pairs, strings quoted
    (``approximate='tanh'``), everything else as ``str`` prints it (``bias=True``)."""
    return ", ".join(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
                     for key, value in config.items())


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return lines[0] if len(lines) == 1 else "\n".join(
        [lines[0]] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class for all layers and models: subclass it, assign layers in ``__init__`` after
    calling ``super().__init__()``, and define ``forward``.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 3)
    ...         self.fc2 = nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc2(self.fc1(x).relu())
    >>> model = TwoLayer()
    >>> [name for name, _ in model.named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    >>> model(np.ones((5, 4), dtype=np.float32)).shape
    (5, 2)
    >>> model.num_parameters()
    23
    >>> model.eval().fc1.training
    False
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        # hook id -> hook, in call order; the *_with_kwargs tables hold the ids (-> True) of the
        # hooks registered with ``with_kwargs=True``
        for table in _HOOK_TABLES:
            object.__setattr__(self, table, OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} is missing the required forward()")

    def __call__(self, *args, **kwargs):
        """Run ``forward``, with the forward pre-hooks before it and the forward hooks after."""
        if not (self.__dict__.get("_forward_pre_hooks") or self.__dict__.get("_forward_hooks")):
            return self.forward(*args, **kwargs)
        # snapshots: a hook that removes a hook (itself included) changes the next call only
        for hook_id, hook in tuple(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook_id, hook in tuple(self._forward_hooks.items()):
            if hook_id in self._forward_hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # --- hooks --------------------------------------------------------------------------------
    def _register_hook(self, kind: str, hook, prepend: bool, with_kwargs: bool) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"register_{kind[1:-1]}: hook must be callable, got {hook!r}")
        hooks, flagged = self._registry(kind), self._registry(kind + "_with_kwargs")
        handle = RemovableHandle(hooks, extra=(flagged,))
        hooks[handle.id] = hook
        if with_kwargs:
            flagged[handle.id] = True
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before every ``module(...)`` call, as PyTorch.

        ``args`` is the tuple of positional arguments (keyword arguments are passed to forward
        but not to the hook). A non-None return replaces ``args`` (a non-tuple ``v`` becomes
        ``(v,)``). With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and
        returns None or a pair ``(args, kwargs)``. Hooks run in registration order;
        ``prepend=True`` puts this one first. Calling ``module.forward(...)`` directly runs no
        hook. Returns a handle whose ``remove()`` unregisters the hook.
        """
        return self._register_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after every ``module(...)`` call, as PyTorch.

        ``args`` are the positional arguments ``forward`` received (after the pre-hooks); a
        non-None return replaces the output, and later hooks see the replacement. With
        ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``. Hooks run in
        registration order; ``prepend=True`` puts this one first. Returns a handle whose
        ``remove()`` unregisters the hook.

        Examples
        --------
        >>> import numpy as np
        >>> from numcnn import nn
        >>> model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
        >>> shapes = []
        >>> handle = model[0].register_forward_hook(lambda m, args, out: shapes.append(out.shape))
        >>> _ = model(np.ones((4, 3), dtype=np.float32))
        >>> handle.remove()
        >>> _ = model(np.ones((5, 3), dtype=np.float32))
        >>> shapes
        [(4, 2)]
        """
        return self._register_hook("_forward_hooks", hook, prepend, with_kwargs)

    # --- registration -------------------------------------------------------------------------
    def _registry(self, what: str) -> OrderedDict:
        registry = self.__dict__.get(what)
        if registry is None:
            raise AttributeError(
                f"cannot assign {what[1:]} before Module.__init__() call "
                f"(call super().__init__() first in {type(self).__name__}.__init__)")
        return registry

    def _check_name(self, name, kind: str, registry: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name must be non-empty and contain no '.', got {name!r}")
        if hasattr(self, name) and name not in self.__dict__[registry]:
            raise KeyError(f"attribute {name!r} already exists")

    def _forget(self, name: str) -> None:
        """Drop ``name`` from the instance dict and every registry (before re-registering)."""
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        self.__dict__.pop(name, None)
        self._non_persistent.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a declared but absent parameter such as a missing bias)."""
        params = self._registry("_parameters")
        self._check_name(name, "parameter", "_parameters")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} "
                            "(numcnn.nn.Parameter or None expected)")
        params[name] = param

    def register_buffer(self, name: str, tensor: np.ndarray | None,
                        persistent: bool = True) -> None:
        """Add a buffer: a plain ndarray saved in the state dict (unless ``persistent=False``)
        but not learned; ``None`` declares a buffer that is absent."""
        buffers = self._registry("_buffers")
        self._check_name(name, "buffer", "_buffers")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r} "
                            "(numpy.ndarray or None expected)")
        buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module (the same as assigning it as an attribute)."""
        modules = self._registry("_modules")
        self._check_name(name, "module", "_modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, Parameter):
            self._registry("_parameters")
            self._forget(name)
            self.register_parameter(name, value)
            return
        if isinstance(value, Module):
            self._registry("_modules")
            self._forget(name)
            self.add_module(name, value)
            return
        for registry, kind, expected, label in (
                ("_parameters", "parameter", Parameter, "numcnn.nn.Parameter"),
                ("_modules", "child module", Module, "numcnn.nn.Module"),
                ("_buffers", "buffer", np.ndarray, "numpy.ndarray")):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                if value is not None and not isinstance(value, expected):
                    raise TypeError(f"cannot assign {type(value).__name__} as {kind} {name!r} "
                                    f"({label} or None expected)")
                found[name] = value
                return
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, ()):
                del self.__dict__[registry][name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    # --- walks --------------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted name, module)`` for this module ('' ) and every descendant."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                               remove_duplicate)

    def modules(self) -> Iterator[Module]:
        return (module for _, module in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        return (child for _, child in self.named_children())

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen: set[int] = set()
        walk = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for module_prefix, module in walk:
            for name, value in module.__dict__[registry].items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted name, parameter)``; a parameter shared by two modules comes once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (param for _, param in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        return (buf for _, buf in self.named_buffers(recurse=recurse))

    def num_parameters(self, only_trainable: bool = False) -> int:
        """The number of scalar parameters (those requiring grad with ``only_trainable``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def apply(self, fn) -> Module:
        """Call ``fn(m)`` on every submodule (children first) and on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # --- modes and gradients ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and all below."""
        if not isinstance(mode, bool):  # a ValueError, as in PyTorch
            raise ValueError(f"train: mode must be a bool, got {mode!r}")  # noqa: TRY004
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: the same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient to None (or to zeros with ``set_to_none=False``)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = np.zeros_like(param.data)

    # --- dtype --------------------------------------------------------------------------------
    def to(self, dtype) -> Module:
        """Convert parameters (and their gradients) and floating buffers to ``dtype`` in place.

        The Parameter objects are kept, so optimizers holding them stay valid. Integer buffers
        (BatchNorm's ``num_batches_tracked``) are left alone. ``'cpu'`` is accepted and ignored.
        """
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        dt = check_float_dtype(dtype, "Module.to")
        for param in self.parameters():
            param.data = param.data.astype(dt, copy=False)
            if param.grad is not None:
                param.grad = param.grad.astype(dt, copy=False)
        for module in self.modules():
            for name, buf in module._buffers.items():
                if buf is not None and np.issubdtype(buf.dtype, np.floating):
                    module._buffers[name] = buf.astype(dt, copy=False)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # --- state --------------------------------------------------------------------------------
    def state_dict(self, *, destination=None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict:
        """An ordered ``name -> ndarray`` copy of every parameter and persistent buffer.

        Each module contributes its own parameters, then its buffers, then its children's
        entries, as in PyTorch. ``keep_vars=True`` gives the Parameter objects and buffer arrays
        themselves instead of copies.
        """
        out = OrderedDict() if destination is None else destination
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param if keep_vars else param.data.copy()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                out[prefix + name] = buf if keep_vars else buf.copy()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination=out, prefix=f"{prefix}{name}.", keep_vars=keep_vars)
        return out

    def save(self, path):
        """Write parameters, buffers and architecture to a ``.safetensors`` file (no pickle);
        see :func:`numcnn.io.save`. Needs the ``safetensors`` extra.

        A model whose architecture numcnn cannot describe (a custom subclass without ``arch``
        and ``config`` attributes) is saved as weights plus its class name; rebuild it with
        ``MyNet.load(path, *init_args)``.
        """
        return _serializer("save")(self, path)

    @classmethod
    def load(cls, path, *args, **kwargs):
        """Rebuild a model written by :meth:`save`, in evaluation mode.

        A file that holds its architecture (numcnn's models, Sequentials of numcnn layers) is
        rebuilt from it: ``nn.Module.load(path)``, or ``LeNet5.load(path)`` which also checks
        the class. A custom subclass saved as weights is rebuilt with ``MyNet.load(path,
        *args, **kwargs)``: ``MyNet(*args, **kwargs)``, then its weights from the file, which
        must come from a ``MyNet`` (the stored class name is compared, never imported).
        """
        return _serializer("load")(cls, path, *args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values into the parameters and buffers in place, keeping their dtypes.

        Every key is checked before anything is copied. A shape mismatch always raises; with
        ``strict=True`` missing and unexpected keys raise too. The error (a :class:`KeyError`
        and a :class:`ValueError` at once) lists every problem. Returns
        ``(missing_keys, unexpected_keys)``.
        """
        targets = {k: (v.data if isinstance(v, Tensor) else v)
                   for k, v in self.state_dict(keep_vars=True).items()}
        return load_state(targets, state_dict, strict, type(self).__name__)

    # --- configuration ------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this layer, as Keras's ``get_config``:
        ``type(m)(**m.get_config())`` is a layer like ``m`` with fresh weights.

        The values are JSON-able (JSON stores tuples as lists). ``device`` and ``dtype`` are left out:
        they say where the weights live, not what the layer computes. :mod:`numcnn.io` stores
        the configuration of each layer of a ``Sequential`` under its class name, and ONNX
        export and ``explain`` read a layer's settings from it. A module whose constructor
        takes no arguments is described by ``{}``; any other class overrides this method.

        Examples
        --------
        >>> from numcnn import nn
        >>> nn.Linear(4, 2, bias=False).get_config()
        {'in_features': 4, 'out_features': 2, 'bias': False}
        >>> nn.Tanh().get_config()
        {}
        """
        arguments = list(inspect.signature(type(self).__init__).parameters)[1:]
        if not arguments:
            return {}
        raise NotImplementedError(
            f"{type(self).__name__} does not describe its configuration: its constructor takes "
            f"{', '.join(arguments)}; define {type(self).__name__}.get_config() returning the "
            "keyword arguments that rebuild it")

    # --- printing -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses; layers override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_addindent(repr(child), 2)}"
                       for name, child in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            body = extra_lines[0] if len(extra_lines) == 1 and not child_lines \
                else "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"
