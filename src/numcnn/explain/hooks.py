"""Watching which layer a model calls on which array, without changing the model's code.

Both the planner of models with their own ``forward`` (:mod:`.walk`) and the trace
(:mod:`.trace`) need to see every leaf layer's input and output during one real call. They
wrap the layers' ``forward`` for the duration of a ``with`` block; the layers are left exactly
as they were afterwards (the class method again, or the instance attribute a layer had).
"""
from __future__ import annotations

from contextlib import contextmanager


def restore_forward(module, saved) -> None:
    """Undo a forward wrapper: back to the class's method, or to an instance attribute it had."""
    if saved is None:
        module.__dict__.pop("forward", None)
    else:
        object.__setattr__(module, "forward", saved)


@contextmanager
def watching(modules, on_call):
    """Within the block, each call ``m(inp)`` of a module in ``modules`` reports to ``on_call``.

    ``on_call(module, inp)`` runs before the layer and returns a function that receives the
    layer's output after it (or None). Exceptions of the layer propagate unchanged.
    """
    modules = list({id(m): m for m in modules}.values())
    saved = [(m, m.__dict__.get("forward")) for m in modules]
    for module in modules:
        def forward(inp, *args, _orig=module.forward, _module=module, **kwargs):
            after = on_call(_module, inp)
            out = _orig(inp, *args, **kwargs)
            if after is not None:
                after(out)
            return out
        object.__setattr__(module, "forward", forward)
    try:
        yield
    finally:
        for module, forward in saved:
            restore_forward(module, forward)


@contextmanager
def watching_functions(namespace, names, on_call):
    """Within the block, each call ``namespace.name(inp, ...)`` reports ``on_call(name, inp)``
    (which returns a function for the output, or None). Code that looks the function up on the
    namespace when it calls (``F.relu(x)``) is seen; a name imported earlier is not."""
    saved = {name: getattr(namespace, name) for name in names}
    for name, orig in saved.items():
        def wrapper(inp, *args, _orig=orig, _name=name, **kwargs):
            after = on_call(_name, inp)
            out = _orig(inp, *args, **kwargs)
            if after is not None:
                after(out)
            return out
        setattr(namespace, name, wrapper)
    try:
        yield
    finally:
        for name, orig in saved.items():
            setattr(namespace, name, orig)
