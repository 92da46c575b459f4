"""Find the directory that holds a data set, downloading it when none does.

A data directory ``D`` *holds* a data set ``name`` when ``D/name/`` contains the needed files
(by default all four of :data:`numcnn.data.catalog.ALL_FILES`). Directories are searched in
this order:

1. an explicit ``data_dir`` argument (the command line's ``--data-dir``): when given, it is
   the only directory considered, and downloads go there;
2. the directory named by the ``NUMCNN_DATA`` environment variable;
3. the ``data/`` folder of a source checkout of numcnn (the bundled copy), when it exists;
4. the user cache, ``$XDG_CACHE_HOME/numcnn`` or ``~/.cache/numcnn``.

When no directory holds the files, they are downloaded into the cache (or into ``data_dir``).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from numcnn.data import catalog
from numcnn.data.download import DEFAULT_TIMEOUT, download_dataset

#: Environment variable naming a data directory.
ENV_VAR = "NUMCNN_DATA"


def bundled_data_dir() -> Path | None:
    """Return the ``data/`` folder of a source checkout, or ``None`` when there is none.

    The package lives at ``<checkout>/src/numcnn/data/``; an installed copy has no such
    folder beside it, and then ``None`` is returned.
    """
    parents = Path(__file__).resolve().parents  # data/, numcnn/, src/, <checkout>
    if len(parents) < 4 or parents[2].name != "src" or parents[1].name != "numcnn":
        return None
    data = parents[3] / "data"
    return data if data.is_dir() else None


def cache_dir() -> Path:
    """Return the user cache directory, ``$XDG_CACHE_HOME/numcnn`` or ``~/.cache/numcnn``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "numcnn"


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Return the data directories to search, in order of preference.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Explicit directory; when given it is the only one returned.

    Returns
    -------
    list of pathlib.Path
        ``[data_dir]``, or ``$NUMCNN_DATA`` (when set), the bundled copy (when present) and
        the cache directory.
    """
    if data_dir is not None:
        return [Path(data_dir)]
    dirs = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    bundled = bundled_data_dir()
    if bundled is not None:
        dirs.append(bundled)
    dirs.append(cache_dir())
    return dirs


def missing_files(data_dir: str | os.PathLike, name: str,
                  files: Iterable[str] | None = None) -> list[str]:
    """Return the files of data set ``name`` that ``data_dir / name`` lacks.

    Parameters
    ----------
    data_dir : str or os.PathLike
        Data directory.
    name : str
        ``'mnist'`` or ``'fashion-mnist'``.
    files : iterable of str, optional
        Files needed (default: all four).

    Returns
    -------
    list of str
        Missing file names; empty when the directory holds the data set.
    """
    folder = Path(data_dir) / catalog.check_name(name)
    files = catalog.ALL_FILES if files is None else files
    return [f for f in files if not (folder / f).is_file()]


def find_dataset_dir(name: str, data_dir: str | os.PathLike | None = None,
                     files: Iterable[str] | None = None) -> Path | None:
    """Return the first ``D / name`` whose data directory ``D`` holds the files, or ``None``.

    Parameters
    ----------
    name : str
        ``'mnist'`` or ``'fashion-mnist'``.
    data_dir : str or os.PathLike, optional
        Explicit data directory (see :func:`search_dirs`).
    files : iterable of str, optional
        Files needed (default: all four).

    Returns
    -------
    pathlib.Path or None
        The data set directory, or ``None`` when no searched directory holds it.
    """
    files = tuple(catalog.ALL_FILES if files is None else files)
    for directory in search_dirs(data_dir):
        if not missing_files(directory, name, files):
            return directory / name
    return None


def resolve_dataset_dir(name: str, data_dir: str | os.PathLike | None = None, *,
                        files: Iterable[str] | None = None, download: bool = True,
                        mirrors: Sequence[str] | None = None,
                        timeout: float = DEFAULT_TIMEOUT, verbose: bool = True) -> Path:
    """Return the directory of data set ``name``, downloading the files when none holds them.

    Parameters
    ----------
    name : str
        ``'mnist'`` or ``'fashion-mnist'``.
    data_dir : str or os.PathLike, optional
        Explicit data directory: the only one searched, and the download target.
    files : iterable of str, optional
        Files needed (default: all four).
    download : bool, optional
        Download missing files (into ``data_dir``, else the cache directory).
    mirrors : sequence of str, optional
        Base URLs to download from (default: ``catalog.MIRRORS[name]``).
    timeout : float, optional
        Socket timeout of each download, in seconds.
    verbose : bool, optional
        Report downloads on standard error.

    Returns
    -------
    pathlib.Path
        ``D / name`` for the data directory ``D`` that holds the files.

    Raises
    ------
    FileNotFoundError
        If no directory holds the files and ``download`` is false. The message names the
        directories searched, the missing files and how to provide them.
    DownloadError
        If a download fails or a downloaded file has the wrong checksum.
    """
    files = tuple(catalog.ALL_FILES if files is None else files)
    found = find_dataset_dir(name, data_dir, files)
    if found is not None:
        return found
    target = Path(data_dir) if data_dir is not None else cache_dir()
    if download:
        return download_dataset(name, target, files, mirrors, timeout, verbose)
    if data_dir is not None:
        missing = ", ".join(missing_files(data_dir, name, files))
        raise FileNotFoundError(
            f"data directory {data_dir} does not hold the {name} data set: {target / name} "
            f"lacks {missing}. Copy the files there, point --data-dir/data_dir at a directory "
            f"that has a {name}/ folder with them, or allow downloading (download=True)"
        )
    searched = ", ".join(str(d) for d in search_dirs())
    raise FileNotFoundError(
        f"no data directory holds the {name} data set (files {', '.join(files)}); searched "
        f"{searched}. Set {ENV_VAR} or pass --data-dir/data_dir to a directory with a {name}/ "
        f"folder holding them, or allow downloading (download=True)"
    )
