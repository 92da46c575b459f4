"""The JSON file of ``--json FILE``: written atomically, and only over an earlier result.

A benchmark runs for many minutes, so the path is checked before anything runs: an existing
file there must be an earlier result of this benchmark (a JSON object carrying :data:`MARK`),
anything else is refused and left alone, and a file must be creatable in its folder. The
result goes to a temporary file beside the target first and is renamed over it when complete
(:func:`numcnn.atomic.write_text`), so an interrupted write never leaves half a file, nor
destroys the earlier result.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from numcnn.atomic import write_text
from numcnn.errors import UserError

#: The key and value every result file starts with.
MARK = ("benchmark", "numcnn bench")


class NotAResult(UserError):
    """The path of ``--json`` holds something that is not an earlier result."""


def _refusal(path: Path) -> str | None:
    """Why ``path`` may not receive a result; None where it may (absent, or an earlier one)."""
    if not path.exists():
        return None
    if path.is_dir():
        return f"{path} is a folder"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{path} exists and is not a result of numcnn bench ({err})"
    key, value = MARK
    if not isinstance(data, dict) or data.get(key) != value:
        return (f'{path} exists and is not a result of numcnn bench (no "{key}": "{value}" '
                "entry)")
    return None


def _unwritable(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (read-only, not ours, a read-only file system),
    found by creating and removing one; None where one can."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".numcnn-bench-", suffix=".probe", dir=folder)
    except OSError as err:
        return err.strerror or str(err)
    os.close(fd)
    os.unlink(probe)
    return None


def json_path(text: str) -> Path:
    """argparse ``type=`` of ``--json``: the path, refused where it holds anything but an
    earlier result, or where its folder cannot take the file."""
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path.parent} is not an existing folder: create it first, or choose another file")
    reason = _refusal(path)
    if reason is not None:
        raise argparse.ArgumentTypeError(
            f"{reason}; it is left as it is: remove it or choose another file")
    # the result is written minutes later, beside the target then renamed: try that folder now
    unwritable = _unwritable(path.parent)
    if unwritable is not None:
        raise argparse.ArgumentTypeError(
            f"cannot write {path}: no file can be created in {path.parent} ({unwritable}); "
            "choose a folder you may write to")
    return path


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON to ``path``, which :func:`json_path` accepted at the start; it
    is checked again, since the run took minutes."""
    reason = _refusal(path)
    if reason is not None:
        raise NotAResult(f"not writing the result: {reason}; it is left as it is")
    key, value = MARK
    write_text(path, json.dumps({key: value, **result}, indent=2) + "\n")
