"""``numcnn.save`` / ``numcnn.load``: PyTorch's ``torch.save`` / ``torch.load`` without pickle.

The file is a plain ``.npz`` archive (NumPy's zip of ``.npy`` files): every array or tensor
is one entry, and one JSON document (entry ``__numcnn__``) holds the structure around them, so
a state dict, an optimizer's ``state_dict()`` or a checkpoint dict such as
``{"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict()}`` round-trips.
Loading uses ``allow_pickle=False``: opening a file never runs code. Paths are written
atomically (a temporary file in the same folder, fsync, then rename).

What can be stored: ndarrays (not of object dtype), Tensors and Parameters (loaded back as
Tensors with the same ``requires_grad``, as ``torch.load`` gives tensors), dicts (and
OrderedDicts) with str/int/float/bool/None keys, lists, tuples, and ``None``/bool/int/float/str.
Anything else (a whole model object, a function) is refused: save ``model.state_dict()`` and
rebuild the model in code, as PyTorch recommends.

:func:`load` also reads a ``.safetensors`` file (such as :meth:`numcnn.nn.Module.save`
writes), as an OrderedDict of arrays; a pickled ``torch.save`` file is refused with a note.

Examples
--------
>>> import io, numcnn as nc
>>> model = nc.nn.Linear(3, 2)
>>> buffer = io.BytesIO()
>>> nc.save(model.state_dict(), buffer)
>>> _ = buffer.seek(0)
>>> state = nc.load(buffer)
>>> list(state), state["weight"].shape
(['weight', 'bias'], (2, 3))
"""
from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .autograd import Tensor

__all__ = ["load", "save"]

FORMAT = "numcnn-save"
VERSION = 1
_META = "__numcnn__"
_KEY_TYPES = (str, int, float, bool, type(None))
_MAX_META_BYTES = 256 * 2 ** 20


def _pack(obj, arrays: dict, where: str):
    """The JSON tree of ``obj``; arrays go to ``arrays`` and are referenced by key."""
    if isinstance(obj, Tensor):
        return {"__tensor__": _pack(obj.data, arrays, where)["__array__"],
                "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"save: the array at {where or '/'} has dtype object, which only "
                            "pickle could store; numcnn never pickles")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, _KEY_TYPES)]
        if bad:
            raise TypeError(f"save: dict keys must be str, int, float, bool or None, got "
                            f"{bad[0]!r} at {where or '/'}")
        items = [[k, _pack(v, arrays, f"{where}/{k}")] for k, v in obj.items()]
        return {"__odict__" if isinstance(obj, OrderedDict) else "__dict__": items}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, arrays, f"{where}/{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, arrays, f"{where}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(
        f"save: cannot store a {type(obj).__name__} at {where or '/'} without pickle; save "
        "tensors, arrays, numbers, strings and dicts/lists/tuples of them (for a model: "
        "numcnn.save(model.state_dict(), path), then model.load_state_dict(numcnn.load(path)))")


def _unpack(node, arrays, where: str = ""):
    if isinstance(node, list):
        return [_unpack(v, arrays, f"{where}/{i}") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        return arrays[node["__array__"]]
    if "__tensor__" in node:
        data = arrays[node["__tensor__"]]
        grad = bool(node.get("requires_grad")) and np.issubdtype(data.dtype, np.floating)
        return Tensor(data, requires_grad=grad)
    if "__tuple__" in node:
        return tuple(_unpack(v, arrays, f"{where}/{i}") for i, v in enumerate(node["__tuple__"]))
    ordered = "__odict__" in node
    items = node["__odict__"] if ordered else node.get("__dict__", [])
    kind = OrderedDict if ordered else dict
    return kind((k, _unpack(v, arrays, f"{where}/{k}")) for k, v in items)


def save(obj, f) -> None:
    """Write ``obj`` (a state dict or a nested dict/list of tensors, arrays and JSON scalars)
    to ``f``, a path or a binary file object, as ``torch.save``; see the module notes.

    Raises
    ------
    TypeError
        For anything that would need pickle (a model object, an object array, a function).
    """
    arrays: dict[str, np.ndarray] = {}
    try:
        tree = _pack(obj, arrays, "")
    except RecursionError:
        raise ValueError("save: obj contains itself (a dict or list that holds itself) or is "
                         "nested deeper than Python's recursion limit; save a tree of "
                         "containers") from None
    meta = np.array(json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}))

    def write(handle):
        # nothing is pickled: object arrays were refused above (np.savez's allow_pickle keyword
        # is newer than the NumPy this package supports, where it would be saved as an array)
        np.savez(handle, **{_META: meta}, **arrays)

    if hasattr(f, "write"):
        if isinstance(f, io.TextIOBase):
            raise TypeError(f"save: f must be a path or a binary file object, got the text file "
                            f"object {type(f).__name__}; open the file with 'wb' or use "
                            "io.BytesIO")
        write(f)
        return
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")
    path = Path(f)
    if path.is_dir():
        raise IsADirectoryError(f"save: {path} is a directory; give a file name")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sniff(head: bytes) -> str:
    """'npz', 'safetensors', 'pickle' or 'unknown' from a file's first bytes."""
    if head[:4] == b"PK\x03\x04":
        return "npz"   # torch.save's zip also starts so: told apart by its entries below
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 100_000_000:
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def load(f, map_location=None, *, weights_only=None, mmap=None):
    """Read what :func:`save` wrote (or a ``.safetensors`` state dict), as ``torch.load``.

    ``f`` is a path or a binary file object. ``map_location`` may be None or ``'cpu'`` (numcnn
    runs on the CPU); ``weights_only`` and ``mmap`` are accepted for compatibility (loading is
    always weights-only: nothing is unpickled).
    """
    if map_location not in (None, "cpu") and str(map_location) != "cpu":
        raise ValueError(f"load: numcnn runs on the CPU; map_location must be None or 'cpu', "
                         f"got {map_location!r}")
    name = f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", "<file object>")
    if isinstance(f, (str, os.PathLike)):
        if Path(f).is_dir():
            raise IsADirectoryError(f"load: {f} is a folder, not a file")
        if not Path(f).is_file():
            raise FileNotFoundError(f"load: {f} does not exist")
        with open(f, "rb") as handle:
            head = handle.read(16)
    elif hasattr(f, "read"):
        start = f.tell()
        head = f.read(16)
        f.seek(start)
    else:
        raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")
    kind = _sniff(head)
    if kind == "safetensors" and isinstance(f, (str, os.PathLike)):
        from .io import load_safetensors
        return load_safetensors(f)
    if kind == "unknown":  # np.load would read a .npy or try to unpickle a text file
        what = "a .npy array" if head[:6] == b"\x93NUMPY" else "neither an .npz (zip) archive " \
            "nor a safetensors file"
        raise ValueError(f"load: {name} is not a numcnn.save file: it is {what}")
    if kind == "pickle":
        raise ValueError(f"load: {name} is a pickle (an old torch.save file?); numcnn never "
                         "unpickles. In PyTorch, save the state dict with "
                         "safetensors.torch.save_file and load that file here")
    try:
        with np.load(f, allow_pickle=False) as npz:
            if _META not in npz.files:
                hint = (" (it looks like a torch.save file: in PyTorch, re-save the state dict "
                        "with safetensors.torch.save_file)"
                        if any(n.endswith("data.pkl") for n in npz.files) or not npz.files
                        else "")
                raise ValueError(f"load: {name} was not written by numcnn.save{hint}")
            declared = npz.zip.getinfo(_META + ".npy").file_size
            if declared > _MAX_META_BYTES:   # checked before anything is inflated
                raise ValueError(f"load: {name} declares a {declared}-byte structure entry; "
                                 f"numcnn.save writes far less, so the file is not one of its")
            meta = json.loads(str(npz[_META][()]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"load: {name} was not written by numcnn.save")
            if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
                raise ValueError(f"load: {name} has version {meta.get('version')!r}; this "
                                 f"numcnn reads versions up to {VERSION}")
            arrays = _Lazy(npz)
            return _unpack(meta["tree"], arrays)
    except (zipfile.BadZipFile, OSError, EOFError, json.JSONDecodeError, KeyError) as err:
        raise ValueError(f"load: {name} is not a readable numcnn.save file: {err}") from None
    except AttributeError as err:  # a malformed tree
        raise ValueError(f"load: {name} is damaged: {err}") from None


class _Lazy:
    """Read only the entries the tree references (an unreferenced entry is never inflated)."""

    def __init__(self, npz):
        self.npz = npz

    def __getitem__(self, key):
        if not isinstance(key, str) or key == _META or key not in self.npz.files:
            raise KeyError(f"missing entry {key!r}")
        return self.npz[key]
