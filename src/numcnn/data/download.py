"""Download data set files from their publishers' mirrors and verify their SHA-256.

Every file is written atomically: it is streamed into a temporary file in the destination
directory, hashed on the way, and moved into place with :func:`os.replace` only when its
SHA-256 matches the published value. A failed or rejected download leaves nothing behind.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from numcnn.data import catalog
from numcnn.errors import DownloadError

_CHUNK = 1 << 16
#: Default socket timeout of a download, in seconds.
DEFAULT_TIMEOUT = 30.0


class ChecksumError(DownloadError):
    """A downloaded file's SHA-256 differs from the published value."""


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file.

    Parameters
    ----------
    path : str or os.PathLike
        File to hash.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(url_base: str, filename: str, dest_dir: str | os.PathLike, sha256: str,
                  timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Fetch ``url_base + filename`` into ``dest_dir / filename``, verifying its SHA-256.

    Parameters
    ----------
    url_base : str
        Base URL (a trailing ``/`` is added when missing).
    filename : str
        Name of the file, both in the URL and on disk.
    dest_dir : str or os.PathLike
        Directory to write into; created when missing.
    sha256 : str
        Expected hex SHA-256 of the file.
    timeout : float, optional
        Socket timeout in seconds for connecting and for each read.

    Returns
    -------
    pathlib.Path
        Path of the verified file.

    Raises
    ------
    ChecksumError
        If the received bytes do not hash to ``sha256``; nothing is left on disk.
    OSError
        If the server cannot be reached or answers with an error (``urllib.error.URLError``).
    """
    url = url_base.rstrip("/") + "/" + filename
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=dest_dir)
    import urllib.request  # here, not at the top: importing numcnn opens no network code

    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise ChecksumError(
                f"{url}: SHA-256 mismatch for {filename}: expected {sha256.lower()}, "
                f"got {actual}; the download was deleted"
            )
        os.chmod(tmp_name, 0o644)
        target = dest_dir / filename
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def download_dataset(name: str, root: str | os.PathLike, files: Iterable[str] | None = None,
                     mirrors: Sequence[str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                     verbose: bool = True) -> Path:
    """Download the missing files of a data set into ``root / name``.

    Each file is tried on every mirror in turn until one delivers it with the published
    SHA-256. Files already present are kept as they are.

    Parameters
    ----------
    name : str
        ``'mnist'`` or ``'fashion-mnist'``.
    root : str or os.PathLike
        Data directory; the files go to ``root / name``.
    files : iterable of str, optional
        File names to fetch (default: all four). Each must be in the checksum table.
    mirrors : sequence of str, optional
        Base URLs to try, in order (default: ``catalog.MIRRORS[name]``).
    timeout : float, optional
        Socket timeout in seconds, per connection and per read.
    verbose : bool, optional
        Print one line per downloaded file to standard error.

    Returns
    -------
    pathlib.Path
        The data set directory ``root / name``.

    Raises
    ------
    DownloadError
        If some file could not be fetched and verified from any mirror; the message lists
        every attempt. It is a :class:`ChecksumError` when every mirror delivered bytes with
        the wrong SHA-256.
    ValueError
        If ``name`` or a file name is unknown, or ``mirrors`` is empty.
    """
    checksums = catalog.SHA256[catalog.check_name(name)]
    files = catalog.ALL_FILES if files is None else tuple(files)
    for filename in files:
        if filename not in checksums:
            raise ValueError(
                f"files: no published checksum for {filename!r} in data set {name!r}; "
                f"expected names from {sorted(checksums)}"
            )
    mirrors = list(catalog.MIRRORS[name] if mirrors is None else mirrors)
    if not mirrors:
        raise ValueError(f"mirrors: expected at least one base URL for {name!r}, got none")
    dest = Path(root) / name
    created = [folder for folder in (dest, *dest.parents) if not folder.exists()]
    try:
        for filename in files:
            if not (dest / filename).is_file():
                _fetch_from_mirrors(mirrors, filename, dest, checksums[filename], timeout, verbose)
    except BaseException:
        _remove_empty(created)  # a failed first download leaves no empty folder behind
        raise
    return dest


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders of ``folders`` (deepest first) that exist and are empty."""
    for folder in folders:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _fetch_from_mirrors(mirrors: list[str], filename: str, dest: Path, sha256: str,
                        timeout: float, verbose: bool) -> Path:
    """Try each mirror in turn for one file; raise a summary of all failures."""
    import http.client

    failures: list[tuple[str, Exception]] = []
    for base in mirrors:
        if verbose:
            print(f"numcnn: downloading {base.rstrip('/')}/{filename}", file=sys.stderr)
        try:
            return download_file(base, filename, dest, sha256, timeout)
        except (OSError, http.client.HTTPException) as exc:
            failures.append((base, exc))
    error = (ChecksumError if all(isinstance(exc, ChecksumError) for _, exc in failures)
             else DownloadError)
    tried = "; ".join(f"{base}: {exc}" for base, exc in failures)
    raise error(
        f"could not download {filename} into {dest} from any of {len(mirrors)} mirror(s): "
        f"{tried}"
    ) from failures[-1][1]
