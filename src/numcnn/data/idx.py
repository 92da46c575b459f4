"""Reader for the IDX file format of MNIST and Fashion-MNIST.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then the data,
row-major::

    magic  = 0x00 0x00 <type code> <number of dimensions>
    dims   = d_0, d_1, ..., d_{ndim-1}        (big-endian uint32 each)
    data   = d_0 * d_1 * ... * d_{ndim-1} items of the type

MNIST images use magic ``0x00000803`` (uint8, 3 dimensions: count, rows, columns) and labels
``0x00000801`` (uint8, 1 dimension: count). Only the unsigned-byte type ``0x08`` is supported.
Files may be gzip-compressed; compression is detected from the content, not the file name.
"""
from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from numcnn.errors import IdxFormatError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
#: IDX type codes, for error messages; only ``0x08`` is read.
_TYPE_NAMES = {
    0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
    0x0D: "float32", 0x0E: "float64",
}
_CHUNK = 1 << 20
#: Deflate cannot expand data by more than about 1032:1, which bounds a gzip file's content.
_MAX_DEFLATE_RATIO = 1032


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a uint8 array.

    Parameters
    ----------
    path : str or os.PathLike
        File to read. Gzip compression is recognised by the magic bytes ``1f 8b``.
    ndim : int, optional
        Number of dimensions the caller expects (3 for images, 1 for labels). ``None``
        accepts any.

    Returns
    -------
    numpy.ndarray
        uint8 array with the shape the header declares.

    Raises
    ------
    IdxFormatError
        If the magic number, the header or the amount of data is wrong, or the gzip stream
        is corrupt or truncated. The message names the file and the problem.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        size = raw.seek(0, 2)
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        # the most data the file can hold: deflate expands at most ~1032-fold
        most = size * _MAX_DEFLATE_RATIO if compressed else size
        try:
            return _read_stream(stream, path, ndim, most)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise IdxFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc
        finally:
            if compressed:
                stream.close()


def _read_stream(stream: io.BufferedIOBase, path: Path, ndim: int | None,
                 most: int | None = None) -> np.ndarray:
    """Parse header and payload from an open binary stream (see :func:`read_idx`).

    ``most``: an upper bound of the bytes the stream can hold; a header declaring more is
    refused before the array is allocated.
    """
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise IdxFormatError(
            f"{path}: holds {len(magic)} bytes; an IDX file starts with a 4-byte magic number"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise IdxFormatError(
            f"{path}: magic number 0x{magic.hex()} is not an IDX magic number; expected two "
            "zero bytes, a type code and a dimension count (e.g. 0x00000803 for images)"
        )
    type_code, n_dims = magic[2], magic[3]
    if type_code != _UBYTE:
        kind = _TYPE_NAMES.get(type_code, "unknown type")
        raise IdxFormatError(
            f"{path}: magic number 0x{magic.hex()} has type code 0x{type_code:02x} ({kind}); "
            "only 0x08 (unsigned byte) is supported"
        )
    if n_dims == 0:
        raise IdxFormatError(
            f"{path}: magic number 0x{magic.hex()} declares 0 dimensions; expected at least 1"
        )
    if ndim is not None and n_dims != ndim:
        raise IdxFormatError(
            f"{path}: magic number 0x{magic.hex()} declares {n_dims} dimension(s); "
            f"expected {ndim} (magic 0x000008{ndim:02x})"
        )
    header = _read_exactly(stream, 4 * n_dims)
    if len(header) < 4 * n_dims:
        raise IdxFormatError(
            f"{path}: header declares {n_dims} dimension(s), which needs {4 * n_dims} bytes "
            f"of sizes after the magic number, but the file holds only {len(header)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
    expected = math.prod(shape)
    if most is not None and expected > most - 4 - 4 * n_dims:
        dims = "x".join(str(d) for d in shape)
        held = 0  # counted in chunks, never held in memory at once
        while chunk := stream.read(_CHUNK):
            held += len(chunk)
        raise IdxFormatError(f"{path}: header declares {dims} = {expected} bytes of data but "
                             f"the file holds {held}")
    data = np.empty(expected, dtype=np.uint8)
    got = _readinto_full(stream, data.data)  # the array's own buffer, as a memoryview
    extra = 0
    if got == expected:
        while chunk := stream.read(_CHUNK):
            extra += len(chunk)
    if got != expected or extra:
        dims = "x".join(str(d) for d in shape)
        held = got + extra
        surplus = f" ({extra} byte{'s' if extra > 1 else ''} too many)" if extra else ""
        raise IdxFormatError(
            f"{path}: header declares {dims} = {expected} bytes of data but the file holds "
            f"{held}{surplus}"
        )
    return data.reshape(shape)


def _read_exactly(stream: io.BufferedIOBase, n: int) -> bytes:
    """Read up to ``n`` bytes, fewer only at end of stream."""
    parts, need = [], n
    while need:
        chunk = stream.read(need)
        if not chunk:
            break
        parts.append(chunk)
        need -= len(chunk)
    return b"".join(parts)


def _readinto_full(stream: io.BufferedIOBase, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream``; return the number of bytes read (short at end of stream)."""
    filled, size = 0, len(buffer)
    while filled < size:
        n = stream.readinto(buffer[filled:filled + _CHUNK])
        if not n:
            break
        filled += n
    return filled
