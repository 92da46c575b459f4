"""Atomic file writes: every file numcnn writes is either the old one or the complete new one.

Each writer puts its bytes in a temporary file beside the target (same folder, so the rename
never crosses file systems), flushes and ``fsync``\\ s it, renames it over the target and
``fsync``\\ s the folder. A crash, ``kill -9`` or a full disk at any moment leaves the previous
file untouched; at worst an orphan temporary remains, named
``.<target>.<pid>-<random>.numcnn-tmp``, which the next write to that folder removes (only
when the process that made it is gone, so a concurrent writer is never disturbed).

New files get the permissions the umask gives (0644 under the usual umask 022), like files
written with ``open``.

Testing hook: ``NUMCNN_KILL_AT=SITE@N`` (SITE ``step``, ``write`` or ``write:NAME``) makes the
process kill itself with SIGKILL at the N-th visit of that site, counted from 1 in each
process: ``step`` is a training step, ``write`` a write that has put its data in the temporary
file but not yet renamed it (``write:metrics.jsonl`` counts only writes to that name). The
fault-injection tests use it to kill runs at chosen points without relying on timing.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import WriteError

__all__ = ["WriteError", "atomic_path", "clean_orphans", "write_bytes", "write_text"]

SUFFIX = ".numcnn-tmp"
KILL_ENV = "NUMCNN_KILL_AT"
_ORPHAN = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]+" + re.escape(SUFFIX) + "$")
_visits: dict[str, int] = {}


def _describe(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "No space left on device"
    return err.strerror or str(err)


def kill_point(site: str, name: str = "") -> None:
    """SIGKILL this process at the N-th visit of ``site`` when ``NUMCNN_KILL_AT`` asks for it."""
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    spec, _, count = wanted.rpartition("@")
    if spec not in (site, f"{site}:{name}"):
        return
    _visits[spec] = _visits.get(spec, 0) + 1
    if str(_visits[spec]) == count:
        os.kill(os.getpid(), signal.SIGKILL)


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # kill(pid, 0) only probes on POSIX
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_orphans(folder, target: str | None = None) -> list[Path]:
    """Remove the temporaries that killed writers left in ``folder`` (of ``target`` only, when
    given); returns the paths removed. Temporaries of running processes are kept."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _ORPHAN.match(entry.name)
        if match is None or (target is not None and match["target"] != target):
            continue
        if _alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (not possible on every platform: then skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, the temporary is
    fsync-ed and renamed to ``path``. On any exception it is removed and ``path`` is untouched.

    For writers that want a file name (``savefig``, ``onnx.save_model``). Missing folders
    above ``path`` are created.
    OSErrors (disk full, permissions) come out as :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    folder = path.parent
    clean_orphans(folder, path.name)
    tmp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # os.open with mode 0o666 lets the umask decide the permissions, as open() does
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise WriteError(f"cannot write {path}: {_describe(err)}") from None
    try:
        try:
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            kill_point("write", path.name)
            os.replace(tmp, path)
        except OSError as err:
            if isinstance(err, WriteError):
                raise
            raise WriteError(f"cannot write {path}: {_describe(err)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def write_bytes(path, data: bytes | Callable) -> Path:
    """Write ``data`` (bytes, or a callable that writes to a binary file object) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
    return path


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return write_bytes(path, text.encode("utf-8"))
