"""Fault injection: ``numcnn train`` killed with SIGKILL at chosen points (mid-epoch, during a
checkpoint write, during the metrics write), resumed each time with a bare
``numcnn train --out DIR --resume``, ends bit for bit where an uninterrupted run ends.

The kill points come from the ``NUMCNN_KILL_AT`` hook of :mod:`numcnn.atomic` (no timing, no
sleeps); which ones is drawn from a seeded generator (``NUMCNN_FAULT_SEED`` picks another
draw for a soak run).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from numcnn import atomic, checkpoint

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, STEPS = 3, 3       # 96 images in batches of 32
TRAIN = ["--limit", 96, "--test-limit", 40, "--batch-size", 32, "--epochs", EPOCHS,
         "--model", "lenet5", "--activation", "relu", "--optimizer", "sgd", "--seed", 5,
         "--no-download", "--no-progress"]
TIMING = ("seconds", "images_per_second")


def numcnn(*args, cwd, kill_at=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMCNN_DATA", atomic.KILL_ENV)}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["OPENBLAS_NUM_THREADS"] = "1"
    if kill_at:
        env[atomic.KILL_ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "numcnn", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def rows(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def same(a, b, where=""):
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}/{i}")
    else:
        assert a == b, where


def kill_points(rng: random.Random) -> list[str]:
    """One kill mid-epoch, one inside a checkpoint write, one inside a metrics write, in an
    order drawn by ``rng``; each counted within the process it kills."""
    points = [f"step@{rng.randint(2, STEPS * EPOCHS - 1)}",
              f"write:{rng.choice(['last.npz', 'best.npz'])}@1",
              f"write:metrics.jsonl@{rng.randint(2, 3)}"]
    rng.shuffle(points)
    return points


def test_killed_runs_resume_bit_exactly(tmp_path):
    straight = tmp_path / "straight"
    proc = numcnn("train", *TRAIN, "--out", straight, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr

    rng = random.Random(int(os.environ.get("NUMCNN_FAULT_SEED", "13")))
    run = tmp_path / "killed"
    first = True
    for point in kill_points(rng):
        args = ["train", *TRAIN, "--out", run] if first else ["train", "--out", run, "--resume"]
        proc = numcnn(*args, cwd=tmp_path, kill_at=point)
        if proc.returncode == 0:           # finished before the point was reached
            continue
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr)
        first = False
    proc = numcnn("train", "--out", run, "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not first, "no kill happened"

    assert rows(run) == rows(straight)
    for name in ("last.npz", "best.npz"):
        a, b = checkpoint.load(straight / name), checkpoint.load(run / name)
        for key in ("epoch", "model_state", "optimizer", "scheduler", "rng_state",
                    "model_config"):
            same(a[key], b[key], f"{name}/{key}")
    assert not [p.name for p in run.iterdir() if p.name.endswith(atomic.SUFFIX)]
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == EPOCHS and config["limit"] == 96
    assert config["model_options"] == {"activation": "relu"}


def test_a_kill_during_a_checkpoint_write_leaves_the_old_file_and_an_orphan(tmp_path):
    """The moment after the data is written, before the rename: last.npz is still epoch 1's,
    the orphan temporary is removed by the resume."""
    run = tmp_path / "run"
    proc = numcnn("train", *TRAIN, "--out", run, cwd=tmp_path, kill_at="write:last.npz@2")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert checkpoint.load(run / "last.npz")["epoch"] == 1
    orphans = [p for p in run.iterdir() if p.name.endswith(atomic.SUFFIX)]
    assert len(orphans) == 1 and orphans[0].name.startswith(".last.npz.")
    proc = numcnn("train", "--out", run, "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not orphans[0].exists()
    assert [r["epoch"] for r in rows(run)] == [1, 2, 3]
