"""Atomic writes: every file numcnn writes is the old one or the complete new one, never torn.

Covers the writers (checkpoints, safetensors, ONNX, config.json, metrics, plots), the
permissions (the umask's, as ``open`` gives), orphan temporaries of killed writers, and full
disks: a file-size limit (``RLIMIT_FSIZE``, no privileges needed) and, where root can mount
one, a small tmpfs.
"""
from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numcnn import atomic, checkpoint, io, models
from numcnn.atomic import WriteError
from numcnn.train import TrainConfig, save_checkpoint
from tmpfs import mounted_tmpfs

ROOT = Path(__file__).resolve().parents[1]
DEAD_PID = 4194305   # above the largest pid Linux hands out (2**22): no such process


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(atomic.SUFFIX))


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic.write_text(path, "one")
    atomic.write_text(path, "two")
    assert path.read_text() == "two"
    assert temporaries(path.parent) == []


def test_a_failing_writer_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new, but")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(WriteError, match=r"cannot write .*a\.bin: No space left on device"):
        atomic.write_bytes(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert temporaries(tmp_path) == []


def test_orphans_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / f".last.npz.{DEAD_PID}-0123abcd{atomic.SUFFIX}"
    live = tmp_path / f".last.npz.{os.getpid()}-0123abcd{atomic.SUFFIX}"
    other = tmp_path / f".best.npz.{DEAD_PID}-0123abcd{atomic.SUFFIX}"
    for p in (dead, live, other):
        p.write_bytes(b"partial")
    atomic.write_text(tmp_path / "last.npz", "x")          # cleans its own target's orphans
    assert temporaries(tmp_path) == sorted([live.name, other.name])
    assert atomic.clean_orphans(tmp_path) == [other]
    assert temporaries(tmp_path) == [live.name]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_of_the_umask(tmp_path, mask, mode):
    """Checkpoints and safetensors were written 0600 while other files were 0644."""
    pytest.importorskip("safetensors")
    model = models.get_model("lenet5")
    old = os.umask(mask)
    try:
        save_checkpoint(tmp_path / "last.npz", model, None, None, TrainConfig(), 0)
        io.save(model, tmp_path / "model.safetensors")
        atomic.write_text(tmp_path / "config.json", "{}")
    finally:
        os.umask(old)
    for name in ("last.npz", "model.safetensors", "config.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_onnx_export_is_atomic(tmp_path, monkeypatch):
    """A failure while the .onnx is written (a full disk) leaves the old model.onnx intact."""
    pytest.importorskip("onnx")
    import numcnn.onnx

    model = models.get_model("lenet5").eval()
    path = tmp_path / "model.onnx"
    numcnn.onnx.export(model, None, path)
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(WriteError, match="model.onnx: No space left on device"):
        numcnn.onnx.export(models.get_model("lenet5", num_classes=5).eval(), None, path)
    assert path.read_bytes() == before and temporaries(tmp_path) == []


def test_plots_are_written_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    from numcnn import plots

    path = tmp_path / "curves.png"
    rows = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.1, "test_acc": 0.4}]
    plots.plot_curves(rows, path)
    assert path.read_bytes()[:4] == b"\x89PNG" and temporaries(tmp_path) == []


# --- full disks -----------------------------------------------------------------------------------

def _numcnn(*args, cwd, fsize=None, timeout=120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMCNN_DATA", atomic.KILL_ENV)}
    env["PYTHONPATH"] = str(ROOT / "src")

    def limit():
        if fsize is not None:   # writes past it fail with EFBIG, as on a full disk
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "numcnn", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
                          check=False)


def _one_error_line(proc, fragment):
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numcnn: error: "), proc.stderr
    assert fragment in lines[0], lines[0]


TINY = ["--limit", 64, "--test-limit", 20, "--batch-size", 32, "--no-download"]


@pytest.mark.parametrize("fsize, victim", [(300, "config.json"), (100_000, "last.npz")])
def test_train_on_a_full_disk_ends_with_one_line_naming_the_file(tmp_path, fsize, victim):
    proc = _numcnn("train", *TINY, "--epochs", 1, "--out", "run", cwd=tmp_path, fsize=fsize)
    _one_error_line(proc, f"cannot write run/{victim}: File too large")
    assert temporaries(tmp_path / "run") == []


def test_export_on_a_full_disk_keeps_the_old_file(tmp_path):
    pytest.importorskip("onnx")
    save_checkpoint(tmp_path / "model.npz", models.get_model("lenet5"), None, None,
                    TrainConfig(), 0)
    assert _numcnn("export", "model.npz", "model.onnx", cwd=tmp_path).returncode == 0
    before = (tmp_path / "model.onnx").read_bytes()
    proc = _numcnn("export", "model.npz", "model.onnx", cwd=tmp_path, fsize=len(before) // 2)
    _one_error_line(proc, "cannot write model.onnx: File too large")
    assert (tmp_path / "model.onnx").read_bytes() == before
    assert temporaries(tmp_path) == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1.2 MB tmpfs (room for two LeNet-5 checkpoints, not three), or a skip."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    with mounted_tmpfs(mount, "size=1200k"):
        yield mount


def test_a_really_full_disk_keeps_every_file_and_the_run_resumes(small_tmpfs, tmp_path):
    """ENOSPC in the second epoch: one error line naming the file, the checkpoints of epoch 1
    intact and loadable, no temporary left; with space again, --resume finishes the run."""
    run = small_tmpfs / "run"
    proc = _numcnn("train", *TINY, "--epochs", 3, "--lr", 0.5, "--out", run, cwd=tmp_path)
    _one_error_line(proc, "No space left on device")
    assert temporaries(run) == []
    done = checkpoint.load(run / "last.npz")["epoch"]
    assert done >= 1
    checkpoint.load(run / "best.npz")
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    proc = _numcnn("train", "--out", moved, "--resume", "--no-download", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.load(moved / "last.npz")["epoch"] == 3
    # an export onto the full disk keeps the old file too
    pytest.importorskip("onnx")
    target = small_tmpfs / "model.onnx"
    (small_tmpfs / "fill").write_bytes(b"")
    proc = _numcnn("export", moved / "last.npz", target, cwd=tmp_path)
    if proc.returncode == 0:        # it fitted: fill the disk and export again
        before = target.read_bytes()
        with open(small_tmpfs / "fill", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        proc = _numcnn("export", moved / "last.npz", target, cwd=tmp_path)
        _one_error_line(proc, "No space left on device")
        assert target.read_bytes() == before
    else:
        _one_error_line(proc, "No space left on device")
    assert temporaries(small_tmpfs) == []


def test_checkpoint_error_on_write_names_the_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(WriteError, match="last.npz: No space left on device"):
        checkpoint.save(tmp_path / "last.npz", {"a": np.ones(3)})
    assert temporaries(tmp_path) == []
