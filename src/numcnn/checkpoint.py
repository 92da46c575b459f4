"""Checkpoints as plain ``.npz`` files: arrays plus one JSON document, never pickle.

A checkpoint holds the model's state, its architecture name and configuration, the optimizer and
scheduler state, the epoch, the random generator state and anything else JSON-able. Nested
structures are flattened: every ndarray becomes its own ``.npz`` entry and is replaced in the JSON
tree by ``{"__array__": key}``. Loading uses ``allow_pickle=False``, so opening a file never runs
code, and only the entries the tree refers to are read, each after its declared size was checked
against its header (no decompression bombs). Files are written atomically (a temporary file in
the same folder, fsync, then rename), so a crash, Ctrl-C or a full disk leaves either the old
checkpoint or the new one, never a broken one.
"""
from __future__ import annotations

import contextlib
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic
from .errors import CheckpointError

# CheckpointError is re-exported: load() and read_meta() raise it
__all__ = ["FORMAT", "MAX_ARRAY_BYTES", "MAX_META_BYTES", "VERSION", "CheckpointError", "load",
           "read_meta", "save"]

FORMAT = "numcnn-checkpoint"
VERSION = 1
_META = "__meta__"
#: The largest JSON document a checkpoint may hold, and the most bytes its arrays may need in
#: all by default: far above any numcnn model, far below a memory bomb.
MAX_META_BYTES = 64 << 20
MAX_ARRAY_BYTES = 8 << 30


def _flatten(obj, arrays: dict, prefix: str):
    """Replace ndarrays in a nested dict/list by references, collecting them in ``arrays``."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:  # np.savez would pickle it, and load() refuses pickled entries
            raise TypeError(f"checkpoint: the array at {prefix or '/'} has dtype {obj.dtype}, "
                            "which only pickle could store; checkpoints never pickle")
        key = f"a{len(arrays)}:{prefix}"
        arrays[key] = obj
        return {"__array__": key}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint: dict keys must be str or int, got {k!r} at {prefix}")
        # JSON keys are strings: remember which ones were ints so they come back as ints
        return {"__dict__": [[k, _flatten(v, arrays, f"{prefix}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, arrays, f"{prefix}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__} at {prefix or '/'}")


def _unflatten(obj, arrays):
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        return {k: _unflatten(v, arrays) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    return obj


def save(path, payload: dict) -> Path:
    """Write ``payload`` (nested dicts/lists of ndarrays and JSON scalars) to ``path`` atomically
    (see :mod:`numcnn.atomic`); a full disk raises :class:`numcnn.atomic.WriteError` and leaves
    the old file as it was."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(payload, arrays, "")
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    # nothing is pickled: _flatten refused object arrays (np.savez's allow_pickle keyword is
    # newer than the NumPy this package supports, where it would be saved as an array)
    entries: dict[str, Any] = {_META: np.array(meta), **arrays}
    return atomic.write_bytes(path, lambda f: np.savez(f, **entries))


def _entry(zf: zipfile.ZipFile, key: str, path: Path) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(f"{key}.npy")
    except KeyError:
        raise CheckpointError(f"{path} is damaged: missing entry {key!r}") from None


def _read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path):
    """``(shape, dtype, header bytes)`` of one ``.npy`` entry, decompressing only its header."""
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as err:
            raise CheckpointError(f"{path} is damaged: entry {info.filename!r}: {err}") from None
        header = f.tell()
    if dtype.hasobject:
        raise CheckpointError(f"{path} is not a safe numcnn checkpoint: entry "
                              f"{info.filename!r} holds Python objects (pickled data)")
    return tuple(shape), dtype, header


def _array_keys(tree, found: list) -> list:
    if isinstance(tree, dict):
        if "__array__" in tree:
            found.append(tree["__array__"])
        else:
            for item in tree.get("__dict__", []):
                if isinstance(item, list) and len(item) == 2:
                    _array_keys(item[1], found)
    elif isinstance(tree, list):
        for v in tree:
            _array_keys(v, found)
    return found


def _select(tree, keys, path: Path):
    """The tree restricted to the top-level ``keys`` (all of them when None)."""
    if keys is None:
        return tree
    if not (isinstance(tree, dict) and isinstance(tree.get("__dict__"), list)):
        raise CheckpointError(f"{path} is damaged: its tree is not a dictionary")
    return {"__dict__": [item for item in tree["__dict__"]
                         if isinstance(item, list) and len(item) == 2 and item[0] in keys]}


def read_meta(path) -> dict:
    """The JSON document of a checkpoint (format, version, tree), without reading any array."""
    with _open(path) as (_zf, meta):
        return meta


@contextlib.contextmanager
def _open(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a numcnn checkpoint file")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    if head == b"\x93NUMPY":
        raise CheckpointError(f"{path} is not a numcnn checkpoint (it holds a single array)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{path} is not a readable numcnn checkpoint: it is not an .npz "
                              f"(zip) archive ({err})") from None
    with zf:
        try:
            info = zf.getinfo(f"{_META}.npy")
        except KeyError:
            raise CheckpointError(f"{path} is not a numcnn checkpoint (no {_META} entry)") \
                from None
        try:
            shape, dtype, _header = _read_header(zf, info, path)
            if dtype.kind != "U" or shape != () or info.file_size > MAX_META_BYTES:
                raise CheckpointError(
                    f"{path} is not a numcnn checkpoint: its {_META} entry is a {dtype} array "
                    f"of shape {shape} and {info.file_size} bytes (expected one string of at "
                    f"most {MAX_META_BYTES} bytes)")
            with zf.open(info) as f:
                text = np.lib.format.read_array(f, allow_pickle=False)
            meta = json.loads(str(text[()]))
        except CheckpointError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise CheckpointError(f"{path} is not a readable numcnn checkpoint: {err}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise CheckpointError(f"{path} is not a numcnn checkpoint (format {found!r})")
        version = meta.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CheckpointError(f"{path} is damaged: checkpoint version {version!r} is not a "
                                  f"positive integer")
        if version > VERSION:
            raise CheckpointError(
                f"{path} was written by a newer numcnn (checkpoint version {version}; this "
                f"numcnn reads up to {VERSION})")
        if not isinstance(meta.get("tree"), dict):
            raise CheckpointError(f"{path} is damaged: missing entry 'tree' (the dictionary "
                                  f"of its contents)")
        yield zf, meta


def load(path, keys=None, max_bytes: int = MAX_ARRAY_BYTES) -> dict:
    """Read a checkpoint written by :func:`save`; raises :class:`CheckpointError` if it is not one.

    Only the entries the JSON tree refers to are read (``keys``: only those under these
    top-level keys, e.g. ``("arch", "model_config", "model_state")``). Before anything is
    decompressed, every entry's size declared in the archive is checked against the shape and
    dtype in its ``.npy`` header, and their total against ``max_bytes``: a small file that
    declares (or inflates to) gigabytes is refused instead of filling the memory.
    """
    path = Path(path)
    with _open(path) as (zf, meta):
        tree = _select(meta.get("tree"), keys, path)
        plan, total = [], 0
        for key in _array_keys(tree, []):
            if not isinstance(key, str):
                raise CheckpointError(f"{path} is damaged: array reference {key!r}")
            info = _entry(zf, key, path)
            shape, dtype, header = _read_header(zf, info, path)
            nbytes = math.prod(shape) * dtype.itemsize
            if info.file_size != header + nbytes:
                raise CheckpointError(
                    f"{path} is damaged: entry {info.filename!r} declares {info.file_size} bytes "
                    f"but its header describes {header + nbytes} ({dtype} {shape})")
            total += nbytes
            if total > max_bytes:
                raise CheckpointError(
                    f"{path}: its arrays need more than {max_bytes} bytes (entry "
                    f"{info.filename!r}: {dtype} {shape}); refusing to read them")
            plan.append((key, info))
        arrays = {}
        try:
            for key, info in plan:
                with zf.open(info) as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise CheckpointError(f"{path} is not a readable numcnn checkpoint: {err}") from None
    try:
        return _unflatten(tree, arrays)
    except KeyError as err:
        raise CheckpointError(f"{path} is damaged: missing entry {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path} is damaged: {err}") from None
