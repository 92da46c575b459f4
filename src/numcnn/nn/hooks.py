"""``RemovableHandle``: what registering a hook returns, as ``torch.utils.hooks.RemovableHandle``."""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict

__all__ = ["RemovableHandle"]

_ids = itertools.count()


class RemovableHandle:
    """A handle on one registered hook: :meth:`remove` unregisters it.

    Removing twice is harmless, and ``with handle: ...`` removes the hook on leaving the block.
    The handle holds its hook tables weakly, so it does not keep a deleted module alive.
    """

    def __init__(self, hooks: OrderedDict, *, extra: tuple[OrderedDict, ...] = ()):
        self.id = next(_ids)  # unique and increasing: the key that orders hooks by registration
        self._tables = (weakref.ref(hooks),) + tuple(weakref.ref(table) for table in extra)

    def remove(self) -> None:
        for ref in self._tables:
            table = ref()
            if table is not None:
                table.pop(self.id, None)

    def __enter__(self):  # Self (3.11+) would be the precise annotation
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"RemovableHandle(id={self.id})"
