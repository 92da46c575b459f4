"""A small tmpfs for the tests of full and read-only disks (root only), shared by test modules."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted on the existing ``folder`` with mount's ``options`` (``size=1200k``,
    ``ro,size=64k``) for the block, or a skip that says why none can be mounted here."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@contextlib.contextmanager
def unwritable_folder(folder: Path) -> Iterator[str]:
    """The existing ``folder`` made so that this process cannot create a file in it, for the
    block: without write permission for a user, a read-only tmpfs for root (whom permissions
    do not bind). Yields the reason the system gives."""
    if os.name != "posix":
        pytest.skip("needs POSIX permissions")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "ro,size=64k"):
        yield "Read-only file system"

