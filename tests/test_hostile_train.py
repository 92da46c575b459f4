"""A hostile user of ``numcnn train`` and its run folder: lost checkpoints, two trainings on one
folder, damaged settings, odd flags. Each test is a way to lose a run or to get a confusing
error that once worked."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from numcnn import checkpoint, cli, train
from numcnn.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def tiny(out, **overrides) -> TrainConfig:
    """A quick run: 64 training and 40 test images of MNIST, batches of 32."""
    options = {"limit": 64, "test_limit": 40, "epochs": 2, "batch_size": 32, "out": str(out),
               "progress": False, "download": False}
    options.update(overrides)
    return TrainConfig(**options)


def quiet(config: TrainConfig) -> dict:
    return fit(config, log=lambda line: None, warn=lambda line: None)


def snapshot(out) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(out).iterdir()) if p.is_file()}


# --- last.npz gone, the rest of the run still there ------------------------------------------

@pytest.mark.parametrize("keep", ["best.npz", "metrics.jsonl"])
def test_resume_without_last_npz_of_a_longer_run_refuses_to_start_over(tmp_path, keep):
    """A user deletes last.npz to save space: --resume used to start the run over silently,
    replacing best.npz and the metrics of the epochs trained."""
    quiet(tiny(tmp_path, epochs=2))
    assert checkpoint.load(tmp_path / "best.npz", keys=("epoch",))["epoch"] == 2
    (tmp_path / "last.npz").unlink()
    other = {"best.npz": "metrics.jsonl", "metrics.jsonl": "best.npz"}[keep]
    (tmp_path / other).unlink()  # either file alone shows the run got past its first epoch
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"last\.npz is missing.*--overwrite") as err:
        quiet(tiny(tmp_path, epochs=3, resume=True))
    assert keep in str(err.value)
    assert snapshot(tmp_path) == before


def test_resume_without_last_npz_after_the_first_epoch_starts_over(tmp_path):
    """last.npz gone after epoch 1 (deleted, or a run of an earlier version killed between its
    best.npz and last.npz): nothing is lost by starting over."""
    quiet(tiny(tmp_path, epochs=1))
    (tmp_path / "last.npz").unlink()
    lines: list[str] = []
    fit(tiny(tmp_path, epochs=1, resume=True), log=lines.append)
    assert any("starting from scratch" in line for line in lines)
    assert (tmp_path / "last.npz").exists()


# --- two trainings on one folder ---------------------------------------------------------------

HOLD = """
import sys
from numcnn import rundir
with rundir.claimed(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.mark.skipif(os.name != "posix", reason="the run folder is claimed with flock")
@pytest.mark.parametrize("mode", ["new", "again", "resume", "overwrite"])
def test_a_folder_another_process_trains_in_is_refused(tmp_path, mode):
    """Two trainings started on one folder used to both succeed, each overwriting the other's
    checkpoints and metrics: the folder ended up a mix of two runs."""
    if mode != "new":  # the other process trains the run already there
        quiet(tiny(tmp_path, epochs=1))
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        config = tiny(tmp_path, resume=mode == "resume", overwrite=mode == "overwrite")
        # "again" (the same command once more) is told the run is in use, not merely there
        with pytest.raises(ValueError, match=r"another numcnn train.*another --out"):
            quiet(config)
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(tmp_path) == before
    # the claim ended with its process, killed or not: nothing stale is left behind
    quiet(tiny(tmp_path, resume=True))


# --- killed between the checkpoints of an epoch ------------------------------------------------

def test_a_kill_while_last_npz_is_written_leaves_no_best_npz_of_the_lost_epoch(tmp_path,
                                                                              monkeypatch):
    """best.npz was written before last.npz: killed in between, best.npz held an epoch the
    resumed run never had (its metrics dropped, its weights not those of any epoch kept)."""
    real = train.save_checkpoint

    def save_checkpoint(path, model, optimizer, scheduler, config, epoch, *args, **kwargs):
        if Path(path).name == "last.npz" and epoch == 2:
            raise KeyboardInterrupt  # killed before last.npz of epoch 2 is in place
        return real(path, model, optimizer, scheduler, config, epoch, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(train, "save_checkpoint", save_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            quiet(tiny(tmp_path, epochs=2))  # epoch 2 is better than epoch 1 (see above)
    quiet(tiny(tmp_path, epochs=1, resume=True))  # the user keeps the epoch that was saved
    assert checkpoint.load(tmp_path / "best.npz", keys=("epoch",))["epoch"] == 1
    assert checkpoint.load(tmp_path / "last.npz", keys=("epoch",))["epoch"] == 1


# --- damaged settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("damage, says", [
    ({"model_options": [1]}, "model_options must be a dict"),
    ({"model_options": {"depth": 3}}, "depth"),
    ({"batch_size": 0}, "batch_size must be a positive int, got 0"),
])
def test_resume_with_damaged_settings_names_the_file_in_one_line(tmp_path, capsys, damage,
                                                                 says):
    """A config.json edited by hand: a traceback (TypeError), or an error about a setting the
    user never typed without saying where it came from."""
    settings = {**dataclasses.asdict(tiny(tmp_path)), **damage}
    (tmp_path / "config.json").write_text(json.dumps(settings))
    assert cli.main(["train", "--out", str(tmp_path), "--resume"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("numcnn: error: "), err
    assert str(tmp_path / "config.json") in err[0] and says in err[0], err[0]


@pytest.mark.parametrize("target", ["missing", "loop"])
def test_a_broken_link_as_the_run_folder_is_named_as_such(tmp_path, target):
    """mkdir on a dangling or looping symbolic link says only "File exists"."""
    link = tmp_path / "run"
    link.symlink_to(tmp_path / "nowhere" if target == "missing" else link)
    with pytest.raises(ValueError, match=r"run is a symbolic link to .*, which does not exist "
                                         r"\(or loops\)"):
        quiet(tiny(link))
    assert link.is_symlink() and not link.exists()


def test_resuming_a_finished_run_says_there_is_nothing_to_train(tmp_path):
    quiet(tiny(tmp_path, epochs=1))
    before = snapshot(tmp_path)
    lines: list[str] = []
    fit(tiny(tmp_path, epochs=1, resume=True), log=lines.append)
    assert any("already at epoch 1 (--epochs 1); nothing to train" in line for line in lines)
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "config.json"} == \
        {k: v for k, v in before.items() if k != "config.json"}

