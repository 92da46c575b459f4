"""numcnn's errors: the ones a user can cause, and the one line that reports them.

A ``numcnn`` command that meets a user error (missing data, a wrong path, a corrupt
checkpoint, a diverging run, a full disk) ends with one line on standard error and exit
status 1, never a traceback::

    numcnn: error: cannot access run/best.npz: No such file or directory

:func:`error_line` renders that line, for the command and for each rank of a distributed
run (``numcnn: error: rank 2 failed: ...``). This module imports nothing of numcnn, so every
other module may import it.
"""
from __future__ import annotations

import sys

__all__ = [
    "REPORTED", "USER_ERRORS", "CheckpointError", "DownloadError", "IdxFormatError",
    "TrainingDiverged", "UserError", "WriteError", "error_line", "error_message",
    "is_user_error", "report",
]

PREFIX = "numcnn: error: "


class UserError(Exception):
    """A problem with what the user asked for, reported as one line."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class CheckpointError(ValueError):
    """A file is not a readable numcnn checkpoint."""


class IdxFormatError(ValueError):
    """An IDX file is malformed: bad magic, bad header, or a data size that disagrees."""


class DownloadError(OSError):
    """A file could not be downloaded from any mirror."""


class WriteError(OSError):
    """A file could not be written (disk full, read-only folder, ...); the old file is intact.

    Its message names the file: ``cannot write run/last.npz: No space left on device``.
    """

    def __str__(self) -> str:
        return self.args[0] if len(self.args) == 1 else super().__str__()


#: The user's errors: reported in one line, without a traceback, on every rank alike.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, CheckpointError, IdxFormatError, DownloadError, TrainingDiverged, WriteError,
    FileNotFoundError, PermissionError, ValueError, KeyError, RuntimeError)

#: What a command reports in one line: the user's errors, any OS error, a failed allocation.
REPORTED: tuple[type[BaseException], ...] = USER_ERRORS + (OSError, MemoryError)


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is the user's doing (a traceback would not help them)."""
    return isinstance(err, USER_ERRORS)


def error_message(err: BaseException) -> str:
    """The message of ``err`` on one line.

    An OS error names the file and the reason (``cannot access FILE: REASON``), a failed
    allocation says so, a ``KeyError`` gives its text without quotes; an error that is not one
    of :data:`REPORTED` is prefixed by its type, since it is a bug rather than bad input.
    """
    if isinstance(err, KeyboardInterrupt):
        message = "interrupted"
    elif isinstance(err, MemoryError):
        message = f"not enough memory: {str(err) or 'the allocation failed'}"
    elif isinstance(err, OSError) and err.strerror and not isinstance(err, WriteError):
        where = f" {err.filename}" if err.filename else ""
        message = f"cannot access{where}: {err.strerror}"
    elif isinstance(err, KeyError) and err.args:
        message = str(err.args[0])
    elif isinstance(err, REPORTED):
        message = str(err)
    else:
        message = f"{type(err).__name__}: {err}"
    return " ".join(message.split())  # one line, even for multi-line messages


def error_line(err: BaseException, rank: int | None = None) -> str:
    """``numcnn: error: MESSAGE``; with ``rank``, ``numcnn: error: rank R failed: MESSAGE``."""
    where = "" if rank is None else f"rank {rank} failed: "
    return f"{PREFIX}{where}{error_message(err)}"


def report(err: BaseException, rank: int | None = None, file=None) -> None:
    """Print :func:`error_line` to ``file`` (standard error by default)."""
    print(error_line(err, rank), file=sys.stderr if file is None else file, flush=True)
