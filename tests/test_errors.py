"""numcnn.errors: which errors are the user's, and the one ``numcnn: error:`` line."""
from __future__ import annotations

import errno
import io

import pytest

from numcnn import atomic, checkpoint, errors, train
from numcnn.data import download, idx
from numcnn.errors import (
    REPORTED,
    USER_ERRORS,
    CheckpointError,
    DownloadError,
    IdxFormatError,
    TrainingDiverged,
    UserError,
    WriteError,
    error_line,
    error_message,
    is_user_error,
    report,
)


def test_the_error_classes_live_in_one_module_and_keep_their_old_names():
    assert checkpoint.CheckpointError is CheckpointError
    assert atomic.WriteError is WriteError
    assert idx.IdxFormatError is IdxFormatError
    assert download.DownloadError is DownloadError
    assert issubclass(download.ChecksumError, DownloadError)
    assert train.TrainingDiverged is TrainingDiverged
    for cls in (UserError, CheckpointError, IdxFormatError, DownloadError, TrainingDiverged,
                WriteError):
        assert cls.__module__ == "numcnn.errors"


@pytest.mark.parametrize("err", [
    UserError("x"), CheckpointError("x"), IdxFormatError("x"), DownloadError("x"),
    download.ChecksumError("x"), TrainingDiverged("x"), WriteError("x"),
    FileNotFoundError(errno.ENOENT, "No such file or directory", "a.npz"),
    PermissionError("x"), ValueError("x"), KeyError("x"), RuntimeError("x")])
def test_user_errors(err):
    assert is_user_error(err) and isinstance(err, REPORTED)


@pytest.mark.parametrize("err", [TypeError("x"), AttributeError("x"), ZeroDivisionError(),
                                 IsADirectoryError(errno.EISDIR, "Is a directory"),
                                 MemoryError(), KeyboardInterrupt()])
def test_errors_that_are_not_the_users(err):
    assert not is_user_error(err)


def test_reported_adds_every_os_error_and_a_failed_allocation():
    assert set(REPORTED) - set(USER_ERRORS) == {OSError, MemoryError}
    assert isinstance(IsADirectoryError(), REPORTED) and not isinstance(TypeError(), REPORTED)


@pytest.mark.parametrize("err, line", [
    (UserError("--out must name a folder"), "numcnn: error: --out must name a folder"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "run/best.npz"),
     "numcnn: error: cannot access run/best.npz: No such file or directory"),
    (PermissionError(errno.EACCES, "Permission denied"),
     "numcnn: error: cannot access: Permission denied"),
    (WriteError("cannot write run/last.npz: No space left on device"),
     "numcnn: error: cannot write run/last.npz: No space left on device"),
    (KeyError("unknown model 'x'"), "numcnn: error: unknown model 'x'"),
    (ValueError("two\n   lines"), "numcnn: error: two lines"),
    (MemoryError(), "numcnn: error: not enough memory: the allocation failed"),
    (MemoryError("Unable to allocate 3 GiB"),
     "numcnn: error: not enough memory: Unable to allocate 3 GiB"),
    (TypeError("a bug"), "numcnn: error: TypeError: a bug"),
])
def test_error_line(err, line):
    assert error_line(err) == line
    assert error_message(err) == line[len("numcnn: error: "):]


def test_a_rank_names_itself_and_an_interrupt_says_so():
    assert error_line(RuntimeError("failure injected"), rank=2) == \
        "numcnn: error: rank 2 failed: failure injected"
    assert error_line(KeyboardInterrupt(), rank=0) == "numcnn: error: rank 0 failed: interrupted"


def test_report_prints_the_line():
    out = io.StringIO()
    report(ValueError("bad\nvalue"), file=out)
    assert out.getvalue() == "numcnn: error: bad value\n"
    report(ValueError("bad"), rank=1, file=out)
    assert out.getvalue().splitlines()[-1] == "numcnn: error: rank 1 failed: bad"


def test_errors_imports_nothing_of_numcnn():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(errors.__file__).read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m is None or m.startswith("numcnn")]
