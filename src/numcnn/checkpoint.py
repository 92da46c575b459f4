"""Checkpoints as plain ``.npz`` files: arrays plus one JSON document, never pickle.

A checkpoint holds the model's state, its architecture name and configuration, the optimizer and
scheduler state, the epoch, the random generator state and anything else JSON-able. Nested
structures are flattened: every ndarray becomes its own ``.npz`` entry and is replaced in the JSON
tree by ``{"__array__": key}``. Loading uses ``allow_pickle=False``, so opening a file never runs
code. Files are written atomically (a temporary file in the same folder, fsync, then rename), so a
crash or Ctrl-C leaves either the old checkpoint or the new one, never a broken one.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "numcnn-checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(ValueError):
    """A file is not a readable numcnn checkpoint."""


def _flatten(obj, arrays: dict, prefix: str):
    """Replace ndarrays in a nested dict/list by references, collecting them in ``arrays``."""
    if isinstance(obj, np.ndarray):
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
    """Write ``payload`` (nested dicts/lists of ndarrays and JSON scalars) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(payload, arrays, "")
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_META: np.array(meta)}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path) -> dict:
    """Read a checkpoint written by :func:`save`; raises :class:`CheckpointError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a .npy file holds one bare array
            raise CheckpointError(f"{path} is not a numcnn checkpoint (it holds a single array)")
        with npz:
            if _META not in npz.files:
                raise CheckpointError(f"{path} is not a numcnn checkpoint (no {_META} entry)")
            meta = json.loads(str(npz[_META][()]))
            arrays = {k: npz[k] for k in npz.files if k != _META}
    except CheckpointError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable numcnn checkpoint: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} is not a numcnn checkpoint (format {found!r})")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} was written by a newer numcnn (checkpoint version {meta['version']})")
    try:
        return _unflatten(meta["tree"], arrays)
    except KeyError as err:
        raise CheckpointError(f"{path} is damaged: missing entry {err}") from None
    except (TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{path} is damaged: {err}") from None
