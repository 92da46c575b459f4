"""Weights in and out of numcnn: PyTorch state dicts and safetensors files.

numcnn models name their parameters and buffers exactly as PyTorch does (``conv1.weight`` of
shape (C_out, C_in/groups, kh, kw), ``fc.weight`` of shape (out, in), BatchNorm's
``running_mean``, ``running_var`` and ``num_batches_tracked``), so a state dict moves between
the two libraries unchanged:

* :func:`load_torch_state_dict` copies a state dict of torch tensors or NumPy arrays into a
  numcnn model, and :func:`torch_state_dict` gives the model's state as NumPy arrays or, with
  ``as_torch=True``, as torch tensors. PyTorch is imported only in that last case.
* :func:`save_safetensors` and :func:`load_safetensors` write and read the state dict as a
  `safetensors <https://github.com/huggingface/safetensors>`_ file (no pickle: opening a file
  never runs code), readable by ``safetensors.torch.load_file`` into the equivalent torch model.
* :func:`save` and :func:`load` also store the architecture (``model.arch`` and the JSON
  ``model.config``, or the layer list of a :class:`~numcnn.nn.Sequential`: each layer's class
  name and :meth:`~numcnn.nn.Module.get_config`) in the file's metadata, so :func:`load`
  rebuilds the model from the file alone. Importing this module also installs them behind
  :meth:`numcnn.nn.Module.save` and :meth:`numcnn.nn.Module.load`.

The safetensors functions need the optional ``safetensors`` package
(``pip install 'numcnn[safetensors]'``); NumPy stays the only requirement of everything else.

Examples
--------
>>> import numpy as np
>>> from numcnn import io, nn
>>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> state = io.torch_state_dict(model)
>>> list(state), state["0.weight"].shape
(['0.weight', '0.bias', '2.weight', '2.bias'], (3, 4))
>>> copy = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> io.load_torch_state_dict(copy, state)
<All keys matched successfully>
>>> bool(np.array_equal(copy[2].weight.data, model[2].weight.data))
True
"""
from __future__ import annotations

import json
import math
import os
import stat
from collections import OrderedDict
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path

import numpy as np

from . import nn
from .atomic import write_bytes
from .nn.module import register_serializer
from .nn.state import IncompatibleKeys
from .validation import is_int

__all__ = [
    "FORMAT",
    "load",
    "load_safetensors",
    "load_torch_state_dict",
    "model_from_spec",
    "model_spec",
    "read_metadata",
    "save",
    "save_safetensors",
    "torch_state_dict",
]

#: The ``format`` entry of the metadata :func:`save` writes.
FORMAT = "numcnn"
_FORMAT_VERSION = "1"
_RESERVED = ("format", "format_version", "arch", "config")


# --- PyTorch state dicts ---------------------------------------------------------------------

def _to_numpy(key: str, value) -> np.ndarray:
    """A state dict value as an ndarray: a torch tensor goes through ``detach().cpu().numpy()``
    (bfloat16 and float16 tensors are widened to float32 first), anything else through
    ``np.asarray``."""
    if isinstance(value, np.ndarray):
        return value
    if all(hasattr(value, attr) for attr in ("detach", "cpu", "numpy")):
        tensor = value.detach().cpu()
        if str(tensor.dtype) in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.float()
        return tensor.numpy()
    data = getattr(value, "data", value)        # a numcnn Tensor or Parameter
    try:
        return np.asarray(data)
    except (TypeError, ValueError) as err:
        raise TypeError(f"load_torch_state_dict: the value of {key!r} is a "
                        f"{type(value).__name__}, expected a torch tensor or an array "
                        f"({err})") from None


def load_torch_state_dict(model: nn.Module, state_dict: Mapping, strict: bool = True
                          ) -> IncompatibleKeys:
    """Copy a PyTorch state dict into ``model`` in place.

    Parameters
    ----------
    model : numcnn.nn.Module
        The model to fill; it keeps its dtypes (values are cast to them).
    state_dict : mapping of str to torch.Tensor or numpy.ndarray
        For example ``torch_model.state_dict()``. Torch tensors are converted with
        ``.detach().cpu().numpy()``; PyTorch itself is not imported.
    strict : bool, default True
        Raise when keys are missing or unexpected. Shape mismatches always raise.

    Returns
    -------
    IncompatibleKeys
        ``(missing_keys, unexpected_keys)``, both empty when everything matched.

    Raises
    ------
    numcnn.nn.StateDictError
        (a ``KeyError`` and a ``ValueError``) listing every missing or unexpected key and every
        shape mismatch; nothing is copied then.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_torch_state_dict: model must be a numcnn.nn.Module, got "
                        f"{type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"load_torch_state_dict: state_dict must be a mapping of names to "
                        f"tensors, got {type(state_dict).__name__}")
    arrays = OrderedDict((key, _to_numpy(key, value)) for key, value in state_dict.items())
    return model.load_state_dict(arrays, strict=strict)


def torch_state_dict(model: nn.Module, as_torch: bool = False) -> OrderedDict:
    """The state dict of ``model`` under PyTorch's names, ready for ``load_state_dict``.

    Parameters
    ----------
    model : numcnn.nn.Module
    as_torch : bool, default False
        Return ``torch.Tensor`` values (PyTorch is imported only then) instead of NumPy arrays.

    Returns
    -------
    OrderedDict
        name -> a copy of each parameter and persistent buffer, in registration order.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"torch_state_dict: model must be a numcnn.nn.Module, got "
                        f"{type(model).__name__}")
    state = model.state_dict()
    if not as_torch:
        return state
    try:
        import torch
    except ImportError:
        raise ImportError("torch_state_dict(as_torch=True) needs PyTorch: pip install torch, "
                          "or use as_torch=False for NumPy arrays") from None
    return OrderedDict((key, torch.from_numpy(_contiguous(value)))
                       for key, value in state.items())


# --- architecture specs ------------------------------------------------------------------------

def _contiguous(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array of the same shape (``np.ascontiguousarray`` makes 0-d arrays 1-d)."""
    return np.require(array, requirements="C")


#: Classes of ``numcnn.nn`` that a model file does not hold: the base class, a list without a
#: forward, the losses.
_NOT_LAYERS = ("Module", "ModuleList", "CrossEntropyLoss", "MSELoss")


def _layer_class(kind: str) -> type[nn.Module] | None:
    """The ``numcnn.nn`` layer class named ``kind``, or None."""
    cls = getattr(nn, kind, None) if kind in nn.__all__ and kind not in _NOT_LAYERS else None
    return cls if isinstance(cls, type) and issubclass(cls, nn.Module) else None


def _layer_spec(module: nn.Module, where: str) -> dict:
    """The class name of one layer under ``"type"``, next to its :meth:`get_config`; the layers
    of a ``Sequential`` as ``[name, spec]`` pairs. JSON types only (tuples become lists)."""
    if isinstance(module, nn.Sequential):
        return {"type": "Sequential",
                "layers": [[name, _layer_spec(child, f"{where}.{name}" if where else name)]
                           for name, child in module._modules.items()]}
    kind = type(module).__name__
    if _layer_class(kind) is not type(module):
        raise TypeError(f"model_spec: cannot describe layer {where or '(model)'!r} of type "
                        f"{kind}; only Sequential models of numcnn.nn layers (or models with "
                        "'arch' and 'config' attributes) can be described")
    try:
        return json.loads(json.dumps({"type": kind, **module.get_config()}))
    except NotImplementedError as err:
        raise TypeError(f"model_spec: cannot describe layer {where or '(model)'!r}: "
                        f"{err}") from None
    except (TypeError, ValueError) as err:
        raise TypeError(f"model_spec: the configuration of layer {where or '(model)'!r} "
                        f"({kind}) is not JSON-able: {err}") from None


def _build_layer(spec, where: str) -> nn.Module:
    """The layer (or Sequential) a :func:`_layer_spec` describes, with fresh weights."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise TypeError(f"model_from_spec: layer {where or '(model)'!r} must be a dict with a "
                        f"'type' entry, got {spec!r}")
    kind = spec["type"]
    if kind == "Sequential":
        _check_sequential_keys(spec, where)
        children = OrderedDict()
        if not isinstance(spec.get("layers", []), list):
            raise TypeError(f"model_from_spec: the layers of Sequential {where or '(model)'!r} "
                            f"must be a list of [name, spec] pairs, got {spec['layers']!r}")
        for item in spec.get("layers", []):
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise TypeError(f"model_from_spec: the layers of {where or '(model)'!r} must "
                                f"be [name, spec] pairs, got {item!r}")
            name, child = item
            if not isinstance(name, str):
                raise TypeError(f"model_from_spec: the layers of {where or '(model)'!r} must "
                                f"be named by strings, got the name {name!r}")
            if name in children:       # a dict would keep the last one silently
                raise ValueError(f"model_from_spec: Sequential {where or '(model)'!r} has more "
                                 f"than one layer named {name!r}; layer names must be unique")
            children[name] = _build_layer(child, f"{where}.{name}" if where else name)
        return nn.Sequential(children)
    cls = _layer_class(kind)
    if cls is None:
        raise ValueError(f"model_from_spec: unknown layer type {kind!r} at "
                         f"{where or '(model)'!r}")
    # JSON has no tuples: a list argument is a pair or a size, which layers take as a tuple
    config = {key: tuple(value) if isinstance(value, list) else value
              for key, value in spec.items() if key != "type"}
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        error = TypeError if isinstance(err, TypeError) else ValueError
        raise error(f"model_from_spec: layer {where or '(model)'!r} cannot be built as "
                    f"{kind}(**{config!r}): {err}") from None


def _check_sequential_keys(spec: dict, where: str) -> None:
    """Refuse a Sequential spec with entries besides ``type`` and ``layers``: a layer's stray
    argument is refused by its constructor, and a Sequential's must not pass silently."""
    stray = [key for key in spec if key not in ("type", "layers")]
    if stray:
        raise TypeError(f"model_from_spec: Sequential {where or '(model)'!r} got unexpected "
                        f"key(s) {', '.join(map(repr, stray))}; a Sequential spec holds only "
                        "'type' and 'layers'")


def model_spec(model: nn.Module) -> tuple[str, dict]:
    """``(arch, config)``: what :func:`model_from_spec` needs to rebuild ``model``'s layers.

    A registered model (one with ``arch`` and ``config`` attributes, such as
    :func:`numcnn.models.lenet5`) gives those. A :class:`~numcnn.nn.Sequential` of numcnn layers
    (nested ones too) gives ``('sequential', {'layers': [[name, layer spec], ...]})``, a
    layer spec being the class name under ``'type'`` and the layer's
    :meth:`~numcnn.nn.Module.get_config`.

    Examples
    --------
    >>> from numcnn import io, nn
    >>> io.model_spec(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))[1]["layers"][1]
    ['1', {'type': 'Linear', 'in_features': 4, 'out_features': 2, 'bias': True}]
    """
    arch, config = getattr(model, "arch", None), getattr(model, "config", None)
    if isinstance(arch, str) and isinstance(config, dict):
        return arch, dict(config)
    if isinstance(model, nn.Sequential):
        return "sequential", {"layers": _layer_spec(model, "")["layers"]}
    raise TypeError(f"model_spec: {type(model).__name__} has no 'arch' and 'config' attributes "
                    "and is not a Sequential of numcnn.nn layers, so its architecture cannot be "
                    "stored; save its weights with save_safetensors and rebuild it in code")


def model_from_spec(arch: str, config: dict) -> nn.Module:
    """Build the model :func:`model_spec` described (fresh weights)."""
    if arch == "sequential":
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise TypeError("model_from_spec: arch 'sequential' needs a config with a "
                             f"'layers' list, got {config!r}")
        stray = [key for key in config if key != "layers"]
        if stray:
            raise TypeError(f"model_from_spec: the config of arch 'sequential' got unexpected "
                            f"key(s) {', '.join(map(repr, stray))}; it holds only 'layers'")
        return _build_layer({"type": "Sequential", "layers": config["layers"]}, "")
    from .models import get_model

    if not isinstance(config, dict):
        raise TypeError(f"model_from_spec: config must be a dict, got {config!r}")
    return get_model(arch, **config)


# --- safetensors -----------------------------------------------------------------------------

def _safetensors():
    """``(safetensors.numpy, safe_open, SafetensorError)``, or an ImportError naming the extra."""
    try:
        import safetensors.numpy as st_numpy
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ImportError("reading and writing .safetensors files needs the safetensors "
                          "package: pip install 'numcnn[safetensors]' (or pip install "
                          "safetensors)") from None
    return st_numpy, safe_open, SafetensorError


def _check_metadata(metadata, op: str) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError(f"{op}: metadata must be a dict of str to str (safetensors stores "
                        f"only strings), got {metadata!r}")
    return dict(metadata)


def save_safetensors(model: nn.Module, path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model``'s state dict to a ``.safetensors`` file under PyTorch's names.

    ``safetensors.torch.load_file(path)`` then gives a state dict the equivalent torch model
    loads. The file is written atomically (a temporary file, then a rename).

    Parameters
    ----------
    model : numcnn.nn.Module
    path : str or os.PathLike
    metadata : dict of str to str, optional
        Stored in the file's header (safetensors keeps only strings).

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"save_safetensors: model must be a numcnn.nn.Module, got "
                        f"{type(model).__name__}")
    meta = _check_metadata(metadata, "save_safetensors")
    st_numpy, _, _ = _safetensors()
    tensors = {key: _contiguous(value) for key, value in model.state_dict().items()}
    # serialized here and written by numcnn: save_file would create the file 0600
    return write_bytes(path, st_numpy.save(tensors, metadata=meta or None))


#: Bytes per element of the safetensors dtypes numcnn can read; the most a header may take.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4,
             "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8}
MAX_HEADER_BYTES = 100 << 20


def _header(path: Path, op: str) -> tuple[dict, dict]:
    """``(tensors, metadata)`` from the JSON header of a safetensors file, every declared shape,
    dtype and offset checked against the file's size before any tensor is read.

    ``tensors`` maps each name to ``(dtype, shape, nbytes)``.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{op}: {path} is not a safetensors file: it holds {len(head)} "
                             f"bytes, fewer than the 8 of a header length")
        length = int.from_bytes(head, "little")
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{op}: {path} is not a readable safetensors file: its header "
                             f"declares {length} bytes but the file holds {size - 8} after the "
                             f"length (at most {MAX_HEADER_BYTES} are read)")
        try:
            header = json.loads(f.read(length))
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            # RecursionError: a header of [[[[...]]]] nested deeper than Python's stack
            raise ValueError(f"{op}: {path} is not a readable safetensors file: its header is "
                             f"not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{op}: {path} is not a readable safetensors file: its header is not "  # noqa: TRY004 (a file-content error, as the rest)
                         f"a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_bytes = size - 8 - length
    tensors = OrderedDict()
    for name, entry in header.items():
        where = f"{op}: {path}: tensor {name!r}"
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where} has no dtype, shape and data_offsets") from None
        if dtype not in _ITEMSIZE:
            raise ValueError(f"{where} has dtype {dtype!r}; numcnn reads "
                             f"{', '.join(_ITEMSIZE)}")
        if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool)
                                                and n >= 0 for n in shape)):
            raise ValueError(f"{where} has shape {shape!r}, not a list of sizes")
        nbytes = _ITEMSIZE[dtype]
        for n in shape:
            nbytes *= n
        if not (isinstance(begin, int) and isinstance(end, int)
                and 0 <= begin <= end <= data_bytes and end - begin == nbytes):
            raise ValueError(f"{where} declares {dtype} {tuple(shape)} ({nbytes} bytes) at "
                             f"offsets {begin}..{end}, outside the {data_bytes} bytes of data "
                             f"the file holds")
        tensors[name] = (dtype, tuple(shape), nbytes)
    return tensors, metadata


def regular_file(path, op: str, expected: str = "a .safetensors file",
                 not_regular: type[Exception] = ValueError) -> Path:
    """``path`` as a Path, refused unless it names a regular file, each refusal in its own
    terms (a directory is not "missing"; a FIFO would block the read). ``expected`` names the
    kind of file in the messages; ``not_regular`` is the error for a FIFO or a device."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{op}: path must be a str or os.PathLike, got "
                        f"{type(path).__name__} {path!r}")
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{op}: {path} does not exist") from None
    except OSError as err:     # a symlink loop, a name too long, a folder not searchable
        raise OSError(err.errno, f"{op}: cannot open {path}: {err.strerror}") from None
    except ValueError as err:  # a NUL in the name
        raise ValueError(f"{op}: cannot open {path!r}: {err}") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{op}: {path} is a directory; expected {expected}")
    if not stat.S_ISREG(mode):
        raise not_regular(f"{op}: {path} is not a regular file; expected {expected}")
    return path


def _read(path, op: str, keys=None):
    """``(OrderedDict of arrays, metadata dict)`` from a safetensors file: only ``keys`` (all
    when None), each declared size checked against the file before it is read."""
    path = regular_file(path, op)
    _, safe_open, SafetensorError = _safetensors()
    declared, _ = _header(path, op)
    wanted = [k for k in declared if keys is None or k in keys]
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            tensors = OrderedDict((key, f.get_tensor(key)) for key in wanted)
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise ValueError(f"{op}: {path} is not a readable safetensors file: {err}") from None
    return tensors, metadata


def _read_into(model, path, op: str, strict: bool) -> None:
    """Copy a file's tensors into ``model``, reading only those it can take.

    A tensor the model lacks, or whose declared shape differs, is never read: a free
    placeholder of the declared shape (a broadcast view, no memory) stands in for it, so that
    :meth:`~numcnn.nn.Module.load_state_dict` reports it as usual.
    """
    path = regular_file(path, op)
    state = model.state_dict()
    declared, _ = _header(path, op)
    fits = {k for k, (_, shape, _) in declared.items()
            if k in state and tuple(state[k].shape) == shape}
    tensors, _ = _read(path, op, keys=fits)
    for name, (_, shape, _) in declared.items():
        if name not in tensors:
            tensors[name] = np.broadcast_to(np.zeros((), np.float32), shape)
    model.load_state_dict(OrderedDict((k, tensors[k]) for k in declared), strict=strict)


def read_metadata(path) -> dict[str, str]:
    """The string metadata stored in a safetensors file's header."""
    path = regular_file(path, "read_metadata")
    return {str(k): str(v) for k, v in _header(path, "read_metadata")[1].items()}


def load_safetensors(model_or_path, path=None, strict: bool = True):
    """Read a ``.safetensors`` state dict: into a model, or as a dict of arrays.

    ``load_safetensors(model, path)`` copies the file's tensors into ``model`` in place (the
    checks of :meth:`numcnn.nn.Module.load_state_dict`) and returns the model;
    ``load_safetensors(path)`` returns an ``OrderedDict`` of NumPy arrays.

    Parameters
    ----------
    model_or_path : numcnn.nn.Module or path
    path : str or os.PathLike, optional
        The file, when the first argument is a model.
    strict : bool, default True
        Raise on missing or unexpected keys (shape mismatches always raise).

    Notes
    -----
    Files written by ``safetensors.torch.save_file(torch_model.state_dict(), path)`` load
    directly into the equivalent numcnn model.
    """
    if isinstance(model_or_path, nn.Module):
        if path is None:
            raise TypeError("load_safetensors: a path is needed after the model: "
                            "load_safetensors(model, path)")
        _read_into(model_or_path, path, "load_safetensors", strict)
        return model_or_path
    if path is not None:
        raise TypeError(f"load_safetensors: the first argument must be a numcnn.nn.Module when "
                        f"a path is given too, got {type(model_or_path).__name__}")
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TypeError(f"load_safetensors: expected a model and a path, or a path, got "
                        f"{type(model_or_path).__name__}")
    return _read(model_or_path, "load_safetensors")[0]


def save(model: nn.Module, path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` (weights and architecture) to a ``.safetensors`` file.

    The metadata holds ``format`` (``'numcnn'``), ``arch`` and ``config`` (JSON) from
    :func:`model_spec`, plus the optional user ``metadata``; :func:`load` rebuilds the model
    from them. The tensors are a plain state dict, so other tools (and
    ``safetensors.torch.load_file``) read the file too.

    Examples
    --------
    >>> import tempfile, numcnn as nc
    >>> from numcnn import io, models
    >>> model = models.lenet5(activation="relu")
    >>> with tempfile.TemporaryDirectory() as tmp:            # doctest: +SKIP
    ...     io.save(model, f"{tmp}/lenet.safetensors")
    ...     again = io.load(f"{tmp}/lenet.safetensors")
    """
    meta = _check_metadata(metadata, "save")
    clash = [k for k in meta if k in _RESERVED]
    if clash:
        raise ValueError(f"save: metadata keys {clash} are reserved for the architecture; "
                         f"use other names")
    arch, config = model_spec(model)
    try:
        config_json = json.dumps(config)
    except TypeError as err:
        raise TypeError(f"save: the config of {arch!r} is not JSON-able: {err}") from None
    meta.update(format=FORMAT, format_version=_FORMAT_VERSION, arch=arch, config=config_json)
    return save_safetensors(model, path, meta)


def load(path) -> nn.Module:
    """Rebuild the model :func:`save` wrote: architecture from the metadata, then the weights.

    The model takes the floating dtype of the stored weights (float32 or float64) and is
    returned in evaluation mode.

    Raises
    ------
    ValueError
        When the file holds no numcnn architecture (write it with :func:`save`, or load bare
        weights with ``load_safetensors(model, path)``).
    """
    path = regular_file(path, "load")
    declared, metadata = _header(path, "load")
    if metadata.get("format") != FORMAT or "arch" not in metadata:
        raise ValueError(f"load: {path} holds no numcnn architecture (metadata format "
                         f"{metadata.get('format')!r}); load its weights into a model with "
                         "load_safetensors(model, path)")
    version = metadata.get("format_version", "1")
    if not version.isdigit() or int(version) > int(_FORMAT_VERSION):
        raise ValueError(f"load: {path} has format version {version!r}; this numcnn reads "
                         f"versions up to {_FORMAT_VERSION} (upgrade numcnn)")
    try:
        config = json.loads(metadata.get("config", "{}"))
    except (json.JSONDecodeError, RecursionError) as err:   # nested deeper than the stack
        raise ValueError(f"load: the config stored in {path} is not valid JSON: {err}") from None
    _check_sizes(config, declared, path)
    _check_state_size(metadata["arch"], config, declared, path)
    model = model_from_spec(metadata["arch"], config)
    dtype = next((_FLOATS[d] for d, _, _ in declared.values() if d in _FLOATS), None)
    if dtype is not None and dtype != np.float32:
        model.to(dtype)
    _read_into(model, path, "load", strict=True)
    return model.eval()


_FLOATS = {"F32": np.float32, "F64": np.float64, "F16": np.float32, "BF16": np.float32}


def _check_sizes(config, declared: dict, path) -> None:
    """Refuse an architecture the stored tensors cannot back, before it allocates anything.

    Every size in a model's config (classes, channels, features, kernel sizes) is a
    dimension of some weight, so none may exceed the largest stored dimension: a hostile
    ``num_classes: 10**9`` is an error here, not a 300 GB allocation.
    """
    largest = max((max(shape, default=1) for _, shape, _ in declared.values()), default=0)

    def walk(value, where):
        if isinstance(value, bool):
            return
        if isinstance(value, int) and value > max(largest, 64):
            raise ValueError(f"load: {path}: the architecture's {where}={value} exceeds every "
                             f"size of the stored tensors (the largest is {largest})")
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")

    walk(config, "")


def _check_state_size(arch: str, config, declared: dict, path) -> None:
    """Refuse an architecture whose weights outnumber the values the file stores, before it
    allocates anything.

    A strict load needs every weight of the model in the file, so a model cannot hold more
    values than the stored tensors (whose sizes :func:`_header` checked against the file's
    bytes): a ``Linear(10**6, 10**6)`` over a 1 MB tensor is an error here, not a 4 TB
    allocation, however small each of its sizes is next to the stored ones.
    """
    stored = sum(math.prod(shape) for _, shape, _ in declared.values())
    parts = _state_sizes(arch, config)
    needed = sum(parts.values())
    if needed > stored:
        largest = max(parts, key=parts.__getitem__)
        raise ValueError(f"load: {path}: the architecture needs {needed} weight and buffer "
                         f"values ({parts[largest]} for {largest}) but the file stores only "
                         f"{stored}; it was not saved from that model")


def _state_sizes(arch: str, config) -> dict[str, int]:
    """How many values the state dict of the model ``(arch, config)`` describes holds, by layer
    (``"Linear layer '0.fc'"``) or, for a registered model, as one entry; computed from the
    arguments alone, so that nothing is built. A malformed spec counts as nothing: building
    it then fails with its own message."""
    if not isinstance(config, dict):
        return {}
    if arch == "sequential":
        sizes: dict[str, int] = {}
        _count_layers(config.get("layers"), "", sizes)
        return sizes
    layers = _REGISTERED_LAYERS.get(arch.lower())
    if layers is None:
        return {}
    return {f"model {arch!r}": sum(_layer_state_size(kind, layer)
                                   for kind, layer in layers(config))}


def _count_layers(layers, where: str, sizes: dict[str, int]) -> None:
    """Add the state size of each layer of a Sequential spec's ``layers`` to ``sizes``."""
    for item in layers if isinstance(layers, list) else []:
        if not (isinstance(item, (list, tuple)) and len(item) == 2
                and isinstance(item[1], dict)):
            continue
        name, spec = f"{where}.{item[0]}" if where else str(item[0]), item[1]
        if spec.get("type") == "Sequential":
            _count_layers(spec.get("layers"), name, sizes)
        elif isinstance(spec.get("type"), str):
            key = f"{spec['type']} layer {name!r}"    # added up: two layers may share a name
            sizes[key] = sizes.get(key, 0) + _layer_state_size(spec["type"], spec)


def _size(value) -> int:
    """``value`` when it is a size (an int >= 0, not a bool), else 0: the layer's own check
    refuses it then, so that an invalid argument is never counted as a big one."""
    return int(value) if is_int(value) and value >= 0 else 0


def _layer_state_size(kind: str, config: dict) -> int:
    """How many values ``kind(**config)``, a layer of ``numcnn.nn``, holds in its state dict
    (0 for the layers without weights or buffers), as PyTorch's layers lay them out."""
    bias = config.get("bias", True) is True
    if kind == "Linear":
        out = _size(config.get("out_features"))
        return out * _size(config.get("in_features")) + out * bias
    if kind in ("Conv1d", "Conv2d", "ConvTranspose2d"):
        c_in, c_out = _size(config.get("in_channels")), _size(config.get("out_channels"))
        groups = max(_size(config.get("groups", 1)), 1)
        kernel = config.get("kernel_size")
        area = (math.prod(_size(k) for k in kernel) if isinstance(kernel, (list, tuple))
                else _size(kernel) ** (1 if kind == "Conv1d" else 2))
        # (C_out, C_in/groups, k...), and (C_in, C_out/groups, k...) when transposed
        channels = c_in * (c_out // groups) if kind == "ConvTranspose2d" else \
            c_out * (c_in // groups)
        return channels * area + c_out * bias
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        features = _size(config.get("num_features"))
        affine = features * (1 + bias) if config.get("affine", True) is True else 0
        running = 2 * features + 1 if config.get("track_running_stats", True) is True else 0
        return affine + running
    return 0


def _lenet5_layers(config: dict) -> list[tuple[str, dict]]:
    """The layers with weights of :class:`numcnn.models.LeNet5` built with ``config``."""
    return [("Conv2d", {"in_channels": config.get("in_channels", 1), "out_channels": 6,
                        "kernel_size": 5}),
            ("Conv2d", {"in_channels": 6, "out_channels": 16, "kernel_size": 5}),
            ("Linear", {"in_features": 400, "out_features": 120}),
            ("Linear", {"in_features": 120, "out_features": 84}),
            ("Linear", {"in_features": 84, "out_features": config.get("num_classes", 10)})]


def _convnet_layers(config: dict) -> list[tuple[str, dict]]:
    """The layers with weights of :class:`numcnn.models.ConvNet` built with ``config``."""
    width, hidden = _size(config.get("width", 32)), config.get("hidden", 128)
    channels = [config.get("in_channels", 1), width, width, 2 * width, 2 * width]
    convs = [layer for c_in, c_out in pairwise(channels)
             for layer in (("Conv2d", {"in_channels": c_in, "out_channels": c_out,
                                       "kernel_size": 3, "bias": False}),
                           ("BatchNorm2d", {"num_features": c_out}))]
    return convs + [
        ("Linear", {"in_features": 2 * width * 7 * 7, "out_features": hidden, "bias": False}),
        ("BatchNorm1d", {"num_features": hidden}),
        ("Linear", {"in_features": hidden, "out_features": config.get("num_classes", 10)})]


#: Registered model name -> its layers with weights, for :func:`_state_sizes`.
_REGISTERED_LAYERS = {"lenet5": _lenet5_layers, "convnet": _convnet_layers}


# --- Module.save and Module.load -----------------------------------------------------------------

def _save_module(model: nn.Module, path) -> Path:
    """:meth:`numcnn.nn.Module.save`: with the architecture when :func:`model_spec` can describe
    it, else the weights and the class name (checked by :func:`_load_module`)."""
    try:
        model_spec(model)
    except TypeError:
        cls = type(model)
        return save_safetensors(model, path, {
            "format": "numcnn-weights", "class": f"{cls.__module__}.{cls.__qualname__}"})
    return save(model, path)


def _load_module(cls: type[nn.Module], path, *args, **kwargs) -> nn.Module:
    """:meth:`numcnn.nn.Module.load`: rebuild from the stored architecture (checking the class),
    or ``cls(*args, **kwargs)`` filled with the weights of a file saved from a ``cls``."""
    meta = read_metadata(regular_file(path, f"{cls.__name__}.load"))
    if meta.get("format") == FORMAT and not args and not kwargs:
        model = load(path)
        if not isinstance(model, cls):
            raise ValueError(f"{cls.__name__}.load: {path} holds a {type(model).__name__}, not "
                             f"a {cls.__name__}")
        return model
    if cls is nn.Module:
        return load(path)          # its error says what the file holds instead
    stored, name = meta.get("class"), f"{cls.__module__}.{cls.__qualname__}"
    if stored != name:
        raise ValueError(f"{cls.__name__}.load: {path} holds the weights of a "
                         f"{stored or 'model saved with its architecture'}, not of a {name}")
    try:
        model = cls(*args, **kwargs)
    except TypeError as err:  # a layer or model saved as weights only needs its arguments
        raise TypeError(f"{cls.__name__}.load: {path} holds only the weights of a {name}; "
                        f"give its constructor's arguments, {cls.__name__}.load(path, ...): "
                        f"{err}") from None
    tensors = load_safetensors(path)
    dtype = next((v.dtype for v in tensors.values() if np.issubdtype(v.dtype, np.floating)),
                 None)
    if dtype is not None and dtype != np.float32:
        model.to(dtype)
    model.load_state_dict(tensors)
    return model.eval()


# nn does not import io (io is built on it): io hands Module.save/load their implementation
register_serializer(_save_module, _load_module)
