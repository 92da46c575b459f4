"""The run folder of ``numcnn train``: never overwritten by accident, resumed with its own settings.

* :func:`prepare_out` creates the folder and refuses one that already holds a run unless the
  caller resumes it (``--resume``) or replaces it (``--overwrite``: :func:`remove_run` deletes
  the run's files once the new run is ready to start); temporaries left by a killed write are
  removed.
* :func:`claimed` holds the folder while a run trains in it: a second training started on
  it is refused.
* :func:`saved_settings` reads the settings a run was started with (from ``last.npz``, or from
  ``config.json`` when no epoch finished), :func:`resume_config` merges the flags of a resume
  into them, and :func:`check_same_run` refuses a flag that contradicts them, naming both
  values. Only ``epochs``, ``patience``, ``log_lr`` and where the data comes from may change.
* :func:`load_resume_state` reads the checkpoint to continue from and cuts ``metrics.jsonl``
  back to its epochs (the checkpoint is the truth), and gives ``best.npz`` that epoch when it
  is the best and the run stopped before best.npz was written. Without ``last.npz`` it starts over, unless
  ``best.npz`` or ``metrics.jsonl`` show epochs that starting over would replace.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import inspect
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from . import atomic, checkpoint, metrics, models
from .trainconfig import TrainConfig

#: Files that mark a folder as holding a run, and every file a run writes there.
RUN_MARKERS = ("last.npz", "best.npz", "metrics.jsonl", "config.json")
RUN_FILES = RUN_MARKERS + ("confusion.csv", "curves.png", "filters.png", "feature_maps.png",
                           "confusion.png")

#: Settings that define a run's trajectory, in the order they are checked, with their flags.
SETTINGS = {"model": "--model", "dataset": "--dataset", "dtype": "--dtype",
            "model_options": None, "seed": "--seed", "batch_size": "--batch-size",
            "optimizer": "--optimizer", "lr": "--lr", "momentum": "--momentum",
            "weight_decay": "--weight-decay", "scheduler": "--scheduler", "limit": "--limit",
            "test_limit": "--test-limit", "augment": "--augment"}
_OPTION_FLAGS = {"activation": "--activation", "width": "--width"}


class RunExists(ValueError):
    """``out`` holds a run and the caller neither resumes nor overwrites it."""


class RunMismatch(ValueError):
    """A resume asks for a setting that contradicts the run in the folder."""


class RunBusy(ValueError):
    """Another training (another process, or another call of this one) uses the folder."""


def _first_file_above(path: Path) -> Path | None:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def prepare_out(out, resume: bool, overwrite: bool, log=print,
                held: contextlib.ExitStack | None = None) -> Path:
    """Create the run folder ``out`` and make sure no run in it is lost (see the module).

    ``held``: claim the folder in it (:func:`claimed`) before looking inside, so a training
    started beside a running one is told so, whatever its flags."""
    out = Path(out)
    if str(out) == "":
        raise ValueError("--out must name a folder, got an empty string")
    blocker = _first_file_above(out)
    if blocker is not None:
        where = "is a file" if blocker == out else f"lies under {blocker}, which is a file"
        raise ValueError(f"--out {out} {where}, not a folder; give a folder for the run")
    if out.is_symlink() and not out.exists():  # mkdir would say only "File exists"
        raise ValueError(f"--out {out} is a symbolic link to {os.readlink(out)}, which does "
                         f"not exist (or loops); give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot create the folder: "
                         f"{err.strerror or err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable; give a folder you may write to")
    if held is not None:
        held.enter_context(claimed(out))
    found = [name for name in RUN_MARKERS if (out / name).exists()]
    if found and not resume and not overwrite:
        raise RunExists(f"{out} already holds a run ({', '.join(found)}); continue it with "
                        f"--resume, or replace it with --overwrite")
    removed = atomic.clean_orphans(out)
    if removed:
        log(f"removed {len(removed)} unfinished temporary file(s) of an interrupted write")
    return out


@contextlib.contextmanager
def claimed(out) -> Iterator[Path]:
    """Hold the run folder ``out`` (which exists) for the block: a second training on it while
    the block runs raises :class:`RunBusy` instead of mixing its files with this run's.

    An advisory ``flock`` on the folder itself: no lock file to go stale, the kernel releases it
    when the process ends however it ends (``kill -9`` too). Where there is no ``flock``
    (Windows, some network file systems), the folder is used unclaimed, as before."""
    out = Path(out)
    try:
        import fcntl
        fd = os.open(out, os.O_RDONLY)
    except (ImportError, OSError):
        yield out
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                yield out  # flock not supported here
                return
            raise RunBusy(f"{out} is in use by another numcnn train running now; wait for it "
                          f"to end, or give another --out") from None
        yield out
    finally:
        os.close(fd)


def remove_run(out, log=print) -> None:
    """Delete the files of the run in ``out`` (``--overwrite``; called once the new run has its
    data and model, so a mistyped flag does not cost the old run). Other files stay."""
    out = Path(out)
    found = [name for name in RUN_FILES if (out / name).exists()]
    for name in found:
        try:
            (out / name).unlink()
        except OSError as err:
            raise ValueError(f"--overwrite: cannot remove {out / name}: "
                             f"{err.strerror or err}") from None
    if found:
        log(f"replacing the run in {out} (--overwrite)")


def saved_settings(out) -> tuple[dict | None, dict | None, Path | None]:
    """``(train_config, model_config, source)`` of the run in ``out``, or Nones for none.

    From ``last.npz`` (only its small entries are read) or, when no epoch finished, from
    ``config.json``; ``model_config`` (the model's full configuration) only from a checkpoint.
    """
    out = Path(out)
    last = out / "last.npz"
    if last.exists():
        payload = checkpoint.load(last, keys=("train_config", "model_config"))
        saved = payload.get("train_config")
        if not isinstance(saved, dict):
            raise checkpoint.CheckpointError(f"{last} holds no training settings "
                                             f"('train_config' is missing)")
        return _usable(saved, last), payload.get("model_config"), last
    config_json = out / "config.json"
    if config_json.is_file():
        try:
            saved = json.loads(config_json.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{config_json} is not a readable run configuration: {err}") \
                from None
        if not isinstance(saved, dict):
            raise ValueError(f"{config_json} is not a run configuration (a JSON object)")
        return _usable(saved, config_json), None, config_json
    return None, None, None


def _usable(saved: dict, source: Path) -> dict:
    """``saved`` when it is a run's settings numcnn can train with; else an error naming
    ``source`` (a file edited by hand, not a flag the user typed)."""
    try:
        config = TrainConfig.from_saved(saved)
        config.validate()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source} holds settings numcnn cannot train with: {err}") from None
    unknown = sorted(set(config.model_options) - set(_model_defaults(config.model)))
    if unknown:
        raise ValueError(f"{source} holds settings numcnn cannot train with: model "
                         f"{config.model} takes no option {', '.join(unknown)}")
    return saved


def _model_defaults(model: str) -> dict:
    # the registry's constructors have different signatures: mypy sees plain "function"s
    constructor = cast("Callable[..., Any] | None", models.MODELS.get(model))
    if constructor is None:
        return {}
    return {name: p.default for name, p in inspect.signature(constructor).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _flag(name: str, value) -> str:
    if name == "augment":
        return "--augment" if value else "--no-augment"
    if name.startswith("model_options."):
        key = name.split(".", 1)[1]
        flag = _OPTION_FLAGS.get(key)
        if flag is None:
            return f"model option {key}={value!r}"
        return f"no {flag}" if value is None else f"{flag} {value}"
    flag = SETTINGS[name]
    if value is None:
        return f"no {flag}"
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def check_same_run(saved: dict, config: TrainConfig, out,
                   model_config: dict | None = None) -> None:
    """Raise :class:`RunMismatch` naming both values when ``config`` differs from the ``saved``
    run settings in anything but the epochs, patience, lr logging and data location. Defaults
    are compared resolved (``lr=None`` is the model's default rate)."""
    old, new = TrainConfig.from_saved(saved).resolved(), config.resolved()
    for name in SETTINGS:
        if name == "model_options":
            if old.model != new.model:
                continue
            full_old = {**_model_defaults(old.model), **old.model_options, **(model_config or {})}
            full_new = {**_model_defaults(new.model), **new.model_options}
            for key in sorted(set(full_old) | set(full_new)):
                if full_old.get(key) != full_new.get(key):
                    _mismatch(out, f"model_options.{key}", full_old.get(key), full_new.get(key))
            continue
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            _mismatch(out, name, a, b)


def _mismatch(out, name: str, saved, given):
    raise RunMismatch(f"{out} holds a run trained with {_flag(name, saved)}, not "
                      f"{_flag(name, given)}: drop the flag to continue that run, or give "
                      f"another --out (or --overwrite to replace the run)")


#: What a resume may change: the length of the run and how it is watched, not its trajectory.
MAY_CHANGE = ("epochs", "patience", "log_lr", "data_dir", "download", "progress",
              "distributed", "out", "resume", "overwrite")


def resume_config(out, flags: dict) -> TrainConfig | None:
    """The TrainConfig that continues the run in ``out``: its saved settings, with ``flags``
    (the options the user gave, name -> value; ``model_options`` merged) on top. A flag that
    contradicts a saved setting raises :class:`RunMismatch`; None when ``out`` holds no run."""
    saved, model_config, _ = saved_settings(out)
    if saved is None:
        return None
    config = TrainConfig.from_saved(saved)
    changes = {k: v for k, v in flags.items() if k != "model_options"}
    options = {**config.model_options, **flags.get("model_options", {})}
    merged = dataclasses.replace(config, **changes, model_options=options)
    check_same_run(saved, merged, out, model_config)
    return merged


def load_resume_state(out, config: TrainConfig, log=print, warn=print):
    """``(payload, history, segments)`` to continue the run in ``out`` with ``config``.

    ``payload`` is ``last.npz`` (None when no epoch finished), ``history`` the metrics rows of
    its epochs (``metrics.jsonl`` cut back to them: a torn or later line is dropped, with one
    warning), ``segments`` the run's earlier starts and resumes.
    """
    out = Path(out)
    last = out / "last.npz"
    saved, model_config, _source = saved_settings(out)
    if saved is not None:
        check_same_run(saved, config, out, model_config)
    if not last.exists():
        trained = _epochs_past_the_first(out)
        if trained:
            raise ValueError(f"{last} is missing, but {out} holds a run past its first epoch "
                             f"({trained}): resuming would start it over and replace its "
                             f"files; put last.npz back, or start over with --overwrite")
        log(f"no checkpoint in {out}; starting from scratch")
        return None, [], []
    if saved is None:  # saved_settings found no last.npz: another process wrote it since
        raise RuntimeError(f"{last} appeared while the run's settings were read: is another "
                           f"run writing to {out}?")
    payload = checkpoint.load(last)
    for key in ("model_state", "optimizer", "epoch", "rng_state"):
        if key not in payload:
            raise checkpoint.CheckpointError(f"{last} cannot be resumed: {key!r} is missing")
    done = payload["epoch"]
    if not isinstance(done, int) or isinstance(done, bool) or done < 0:
        raise checkpoint.CheckpointError(f"{last} is damaged: epoch {done!r}")
    if config.epochs < done:
        raise RunMismatch(f"{out} has already trained {done} epochs; --epochs {config.epochs} "
                          f"cannot undo them (give --epochs {done} or more, or --overwrite)")
    planned = saved.get("epochs", config.epochs)
    if planned != config.epochs and config.epochs > done:
        log(f"the run was planned for {planned} epochs; re-planning the learning-rate "
            f"schedule for {config.epochs} epochs from epoch {done + 1}")
    history = _history(out / "metrics.jsonl", done, last, warn)
    _complete_best(out, history, done, log)
    segments = payload.get("segments") or [{"after_epoch": 0, "epochs": planned}]
    log(f"resuming from {last} after epoch {done}")
    return payload, history, list(segments)


def _epochs_past_the_first(out: Path) -> str:
    """What in ``out`` shows a run that trained more than one epoch ('' when nothing does).

    last.npz is written at the end of every epoch, after metrics.jsonl (and, by earlier
    versions, after best.npz): without it, a kill during the first epoch's writes explains a
    metrics line or a best.npz of epoch 1 (starting over redoes that epoch exactly), but nothing
    explains a later one."""
    found = []
    best = out / "best.npz"
    if best.exists():
        epoch = checkpoint.load(best, keys=("epoch",)).get("epoch")
        if isinstance(epoch, int) and epoch > 1:
            found.append(f"best.npz of epoch {epoch}")
    if (out / "metrics.jsonl").exists():
        rows, _torn = metrics.read_metrics_file(out / "metrics.jsonl", required=())
        epochs = max((r["epoch"] for r in rows), default=0)
        if epochs > 1:
            found.append(f"metrics.jsonl up to epoch {epochs}")
    return " and ".join(found)


def _complete_best(out: Path, history: list[dict], done: int, log) -> None:
    """Give ``best.npz`` the epoch of ``last.npz`` when that epoch is the run's best and the
    run stopped before best.npz was written (it is written after last.npz)."""
    if not history or history[-1]["epoch"] != done:
        return
    accs = [r["test_acc"] for r in history]
    if accs.index(max(accs)) != len(accs) - 1:  # the first epoch to reach the best wrote it
        return
    best = out / "best.npz"
    try:
        if best.exists() and checkpoint.load(best, keys=("epoch",)).get("epoch") == done:
            return
    except checkpoint.CheckpointError:
        pass  # a damaged best.npz: replaced by the best epoch's checkpoint
    atomic.write_bytes(best, (out / "last.npz").read_bytes())
    log(f"{best} restored from last.npz: epoch {done}, the best, ended before it was written")


def _history(path: Path, done: int, last: Path, warn) -> list[dict]:
    if not path.exists():
        if done:
            warn(f"{path} is missing; the metrics of epochs 1..{done} are lost")
        return []
    rows, torn = metrics.read_metrics_file(path, required=("test_acc",))
    kept = [r for r in rows if r["epoch"] <= done]
    later = len(rows) - len(kept)
    if later or torn:
        parts = [f"{later} line(s) of epochs after {done}, the last epoch in {last}"] \
            if later else []
        if torn:
            parts.append("a torn last line")
        warn(f"{path}: dropped {' and '.join(parts)}")
    if [r["epoch"] for r in kept] != list(range(1, len(kept) + 1)) or len(kept) != done:
        warn(f"{path} holds epochs {[r['epoch'] for r in kept]}, not 1..{done}; the curves "
             f"will have gaps")
    return kept


def metrics_line(row: dict) -> str:
    return json.dumps(row) + "\n"


def write_config(out, config: TrainConfig, segments: list) -> Path:
    """``config.json``: the run's settings (``epochs``: the total now planned) and its history,
    one ``{"after_epoch", "epochs"}`` per start or resume."""
    document = dataclasses.asdict(config)
    document["history"] = segments
    return atomic.write_text(Path(out) / "config.json", json.dumps(document, indent=2) + "\n")
