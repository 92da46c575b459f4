"""Training and evaluation: the loop, per-epoch metrics, checkpoints and exact resume.

``fit(TrainConfig(...))`` trains a model from :mod:`numcnn.models` on MNIST or Fashion-MNIST,
evaluates on the test split after every epoch, records one JSON line per epoch in
``<out>/metrics.jsonl`` and writes ``<out>/last.npz`` (every epoch) and ``<out>/best.npz`` (best
test accuracy); every file is replaced atomically (:mod:`numcnn.atomic`). A folder holding a run
is refused unless ``resume`` or ``overwrite`` is set (:mod:`numcnn.rundir`). ``resume=True``
continues from ``last.npz`` up to ``epochs`` in total, with the run's own settings, and produces
exactly the metrics an uninterrupted run would have; ``patience`` stops a run whose test
accuracy stalls, ``log_lr`` records the learning rate of every step.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, checkpoint, data, models, optim, rundir
from . import functional as F
from . import random as nc_random
from .autograd import Tensor, no_grad
from .distributed import DataParallel, run_or_abort
from .errors import TrainingDiverged
from .metrics import RunningAverage, confusion_matrix, per_class_accuracy
from .trainconfig import DATASETS, DTYPES, TrainConfig


def preprocessing(model_name: str, dataset: str, augment: bool, dtype=np.float32):
    """Transforms ``(dataset, train batches, test batches)``.

    The data set scales images to [0, 1] and pads them to the model's input size; the loaders
    then shift training images randomly (when ``augment``: drawn from the loader's per-epoch
    generator, so a resumed run sees the same shifts) and normalize with the training set's
    mean and standard deviation.
    """
    cls = DATASETS[dataset]
    _, H, _ = models.input_size(model_name)
    pad = (H - 28) // 2
    base = data.Compose([data.ToFloat(dtype)] + ([data.Pad(pad)] if pad > 0 else []))
    normalize = data.Normalize(cls.mean, cls.std)
    train = data.Compose([data.RandomShift(2), normalize]) if augment else normalize
    return base, train, normalize


def build_optimizer(config: TrainConfig, parameters, lr: float):
    """The optimizer of a resolved ``config`` (:meth:`TrainConfig.resolved`)."""
    if config.optimizer == "sgd":
        momentum = config.momentum
        assert momentum is not None, "TrainConfig.resolved() sets SGD's momentum"
        return optim.SGD(parameters, lr=lr, momentum=momentum,
                         weight_decay=config.weight_decay, nesterov=momentum > 0)
    if config.optimizer == "adam":
        return optim.Adam(parameters, lr=lr, weight_decay=config.weight_decay)
    return optim.AdamW(parameters, lr=lr, weight_decay=config.weight_decay)


def build_scheduler(config: TrainConfig, optimizer, lr: float, steps_per_epoch: int):
    """Every scheduler steps once per batch, so resuming mid-run needs no special case."""
    total = config.epochs * steps_per_epoch
    if config.scheduler == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.scheduler == "onecycle":
        return optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    if config.scheduler == "step":
        return optim.lr_scheduler.StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    return None


class Progress:
    """A tqdm bar over the batches of one epoch (or nothing, when disabled or tqdm is missing)."""

    def __init__(self, total: int, desc: str, enabled: bool | None):
        self.bar = None
        if enabled is None:
            enabled = sys.stderr.isatty()
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # the bar is optional: pip install 'numcnn[cli]'
                return
            self.bar = tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)

    def update(self, stats: RunningAverage, images_per_second: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{stats.loss:.4f}", acc=f"{100 * stats.accuracy:.2f}%",
                                 img_s=f"{images_per_second:.0f}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LocalGradients:
    """The synchronisation hook of one process, and the interface of every such hook.

    :func:`train_epoch` asks its hook which slice of each batch this process trains on
    (:meth:`shard`), and after the backward pass to turn the local gradients into those of the
    whole batch (:meth:`synchronize`); :func:`evaluate` asks it which slice of each batch this
    process evaluates (:meth:`eval_shard`) and to sum the totals over the processes
    (:meth:`reduce_eval`). One process takes all of it and has nothing to synchronise;
    :class:`numcnn.distributed.DataParallel` is the hook of data-parallel training (a shard per
    rank, one ``Allreduce`` per step and one per evaluation).
    """

    def start_epoch(self, model, loader, optimizer) -> None:
        """Called before the first batch of an epoch."""

    def shard(self, n: int) -> tuple[int, int]:
        """``(lo, hi)``: the images ``lo:hi`` of a batch of ``n`` that this process trains on."""
        return 0, n

    def synchronize(self, n_local: int, n_global: int, loss: float,
                    correct: int) -> tuple[float, int]:
        """After the backward pass of the ``n_local`` images of a batch of ``n_global``: make
        every gradient that of the mean loss over the batch; return the batch's mean loss and
        its number of correct predictions."""
        return loss, correct

    def end_epoch(self, model) -> None:
        """Called after the last batch of an epoch."""

    def eval_shard(self, n: int) -> tuple[int, int]:
        """``(lo, hi)``: the images ``lo:hi`` of a test batch of ``n`` that this process
        evaluates."""
        return 0, n

    def reduce_eval(self, loss_sum: float, count: int,
                    confusion: np.ndarray) -> tuple[float, int, np.ndarray]:
        """The evaluation totals of this process (summed loss, image count, confusion matrix)
        summed over every process."""
        return loss_sum, count, confusion


def _part(x, y, lo: int, hi: int):
    """Images and labels ``lo:hi`` of a batch (the batch itself, uncopied, when it is all)."""
    return (x, y) if (lo, hi) == (0, len(y)) else (x[lo:hi], y[lo:hi])


def _train_step(model, x, y, optimizer, sync) -> tuple[float, int]:
    """Forward and backward pass over this process's part of one batch, gradients
    synchronised; returns the batch's mean loss and number of correct predictions."""
    lo, hi = sync.shard(len(y))
    optimizer.zero_grad()
    value, correct = 0.0, 0
    if hi > lo:
        xs, ys = _part(x, y, lo, hi)
        logits = model(Tensor(xs))
        loss = F.cross_entropy(logits, ys)
        value = float(loss.item())
        if math.isfinite(value):  # a diverged loss has no gradient worth computing
            loss.backward()
        correct = int((logits.data.argmax(axis=1) == ys).sum())
    return sync.synchronize(hi - lo, len(y), value, correct)


def train_epoch(model, loader, optimizer, scheduler=None, progress: Progress | None = None,
                lr_log: list | None = None, sync=None):
    """One pass over ``loader``; returns (mean loss, accuracy, seconds, images/second).

    ``lr_log``: a list that gets the learning rate each step used. ``sync``: the
    gradient-synchronisation hook, any object with the methods of :class:`LocalGradients`
    (the default, one process) such as a :class:`numcnn.distributed.DataParallel`.
    """
    sync = LocalGradients() if sync is None else sync
    model.train()
    sync.start_epoch(model, loader, optimizer)
    stats = RunningAverage()
    start = time.perf_counter()
    for x, y in loader:
        loss, correct = _train_step(model, x, y, optimizer, sync)
        if not math.isfinite(loss):  # the same on every rank: they all stop here
            raise TrainingDiverged(
                f"the training loss became {loss} after {stats.count} images of this epoch; "
                f"try a smaller --lr")
        if lr_log is not None:
            lr_log.append(_current_lr(optimizer))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        stats.add(loss, correct, len(y))
        atomic.kill_point("step")
        if progress is not None:
            progress.update(stats, stats.count / max(time.perf_counter() - start, 1e-9))
    sync.end_epoch(model)
    seconds = time.perf_counter() - start
    return stats.loss, stats.accuracy, seconds, stats.count / max(seconds, 1e-9)


def evaluate(model, loader, num_classes: int = 10, sync=None) -> dict:
    """Test loss, accuracy, per-class accuracy and confusion matrix of ``model`` on ``loader``.

    ``sync``: the hook of :func:`train_epoch` (default :class:`LocalGradients`, one process);
    a :class:`numcnn.distributed.DataParallel` makes each rank evaluate its slice of every
    batch and sums the totals over the ranks, so every rank returns the same result.
    """
    sync = LocalGradients() if sync is None else sync
    model.eval()
    stats = RunningAverage()
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    with no_grad():
        for x, y in loader:
            lo, hi = sync.eval_shard(len(y))
            if hi <= lo:
                continue
            xs, ys = _part(x, y, lo, hi)
            logits = model(Tensor(xs))
            stats.update(float(F.cross_entropy(logits, ys).item()), logits.data, ys)
            confusion += confusion_matrix(ys, logits.data.argmax(axis=1), num_classes)
    loss_sum, count, confusion = sync.reduce_eval(stats.loss_sum, stats.count, confusion)
    if count == 0:  # a loss of 0 and an accuracy of 0 % would be made up
        raise ValueError("there is no test data: the test loader yielded no images")
    return {"loss": loss_sum / count, "accuracy": int(np.trace(confusion)) / count,
            "confusion": confusion, "per_class_accuracy": per_class_accuracy(confusion)}


def _current_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def save_checkpoint(path, model, optimizer, scheduler, config: TrainConfig, epoch: int,
                    metrics: dict | None = None, segments: list | None = None) -> Path:
    """Model state, architecture, optimizer/scheduler state, epoch and RNG state, atomically.

    ``segments``: the run's history, one ``{"after_epoch", "epochs"}`` per start or resume.
    """
    payload = {
        "arch": model.arch,
        "model_config": dict(model.config),
        "model_state": dict(model.state_dict()),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": int(epoch),
        "rng_state": nc_random.get_rng_state(),
        "train_config": {k: v for k, v in dataclasses.asdict(config).items()},
        "dataset": config.dataset,
        "metrics": metrics or {},
        "segments": list(segments or []),
    }
    return checkpoint.save(path, payload)


#: The top-level checkpoint entries a model needs: eval and predict read nothing else.
MODEL_KEYS = ("arch", "model_config", "model_state", "dataset", "epoch", "train_config")


def _check_model_config(config, state, path) -> None:
    """Refuse sizes the stored weights cannot back, before the model allocates anything.

    Every integer of a numcnn model's config (classes, channels, widths) sizes some weight, so
    it cannot exceed the largest dimension of the stored arrays: a damaged or hostile
    ``num_classes: 10**9`` is an error here instead of a 300 GB allocation.
    """
    if not isinstance(config, dict):
        raise checkpoint.CheckpointError(f"{path} is damaged: model_config is a "
                                         f"{type(config).__name__}, not a dictionary")
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise checkpoint.CheckpointError(f"{path} is damaged: model_state is not a dictionary "
                                         f"of arrays")
    largest = max((max(v.shape, default=1) for v in state.values()), default=0)
    for key, value in config.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > largest:
            raise checkpoint.CheckpointError(
                f"{path} is damaged: model_config {key}={value} exceeds every size of the "
                f"stored weights (the largest is {largest})")


def load_model(path):
    """Rebuild the model stored in a checkpoint; returns ``(model, payload)``.

    Only the model's entries are read (see :func:`numcnn.checkpoint.load`), and the model
    configuration is checked against the stored weights before the model is built.
    """
    payload = checkpoint.load(path, keys=MODEL_KEYS)
    for key in ("arch", "model_config", "model_state"):
        if key not in payload:
            raise checkpoint.CheckpointError(f"{path} holds no model ({key!r} is missing)")
    _check_model_config(payload["model_config"], payload["model_state"], path)
    try:
        model = models.get_model(payload["arch"], **payload["model_config"])
        state = payload["model_state"]
        dtype = next((v.dtype for v in state.values() if np.issubdtype(v.dtype, np.floating)),
                     None)
        if dtype is not None and dtype != np.float32:
            model.to(dtype)
        model.load_state_dict(state)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as err:
        raise checkpoint.CheckpointError(f"{path}: cannot rebuild its model: {err}") from None
    return model, payload


def checkpoint_dataset(payload: dict, path) -> str:
    """The data set a checkpoint was trained on (``mnist`` when it does not say)."""
    name = payload.get("dataset", "mnist")
    if not isinstance(name, str) or name not in DATASETS:
        raise checkpoint.CheckpointError(
            f"{path} names an unknown dataset {name!r}; numcnn knows "
            f"{', '.join(sorted(DATASETS))} (eval takes --dataset to choose one)")
    return name


def _log(line: str) -> None:
    print(line, flush=True)


def _warn(line: str) -> None:
    print(f"numcnn: warning: {line}", file=sys.stderr, flush=True)


def fit(config: TrainConfig, log=_log, warn=_warn) -> dict:
    """Train as configured; returns the last epoch's metrics (and writes everything to ``out``).

    ``out`` must not hold a run unless ``resume`` (continue it, with the same settings; only
    ``epochs``, ``patience``, ``log_lr`` and the data location may change) or ``overwrite``
    (replace it) is set. ``warn`` gets the warnings (metrics lines dropped on resume).
    """
    config.validate()
    if config.distributed:  # data parallel over MPI (numcnn.distributed imports mpi4py here)
        dp = DataParallel(log=log)
        if dp.is_root:
            log(f"data parallel over {dp.size} {'rank' if dp.size == 1 else 'ranks'}: "
                f"global batch {config.batch_size}, "
                f"{math.ceil(config.batch_size / dp.size)} images per rank or fewer")
        quiet = lambda line: None
        return run_or_abort(_fit, config, log if dp.is_root else quiet,
                            warn if dp.is_root else quiet, dp, comm=dp.comm)
    return _fit(config, log, warn)


def _stale_epochs(history: list[dict]) -> int:
    """Epochs since the best test accuracy (0 when the last epoch is the best)."""
    if not history:
        return 0
    accs = [r["test_acc"] for r in history]
    best = accs.index(max(accs))
    return len(accs) - 1 - best


@dataclass
class _Run:
    """What a training run works with, as :func:`_setup` makes it."""

    config: TrainConfig
    model: Any
    optimizer: Any
    scheduler: Any
    train_loader: Any
    test_loader: Any
    train_set: Any
    test_set: Any
    dp: Any = None  # a numcnn.distributed.DataParallel, or None in a single process

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def is_root(self) -> bool:
        """Only rank 0 touches the files (every process, without MPI)."""
        return self.dp is None or self.dp.is_root


def _fit(config: TrainConfig, log=_log, warn=_warn, dp=None) -> dict:
    """The body of :func:`fit`; ``dp``: a :class:`numcnn.distributed.DataParallel` or None."""
    config = config.resolved()
    with contextlib.ExitStack() as held:  # the run folder, claimed until the run ends
        payload, history, segments = _open_out(config, dp, log, warn, held)
        run = _setup(config, dp)
        start_epoch = _restore(run, payload)
        if dp is not None:  # distributed: every rank starts from rank 0's state
            start_epoch, history = dp.sync_start(run.model, run.optimizer, run.scheduler,
                                                 start_epoch, history)
        if not segments or start_epoch < config.epochs:  # a start or resume that trains
            segments = segments + [{"after_epoch": start_epoch, "epochs": config.epochs}]
        if run.is_root:
            _start_files(run, history, segments, log)
        log(f"training {config.model} on {config.dataset}: {len(run.train_set)} train / "
            f"{len(run.test_set)} test images, {run.model.num_parameters():,} parameters, "
            f"{config.optimizer} lr={config.lr:g}, batch {config.batch_size}, "
            f"{config.epochs} epochs"
            + (f", patience {config.patience}" if config.patience else ""))
        return _train_epochs(run, start_epoch, history, segments, log)


def _open_out(config: TrainConfig, dp, log, warn,
              held: contextlib.ExitStack) -> tuple[dict | None, list, list]:
    """Check the folder ``out`` (a run there needs ``resume`` or ``overwrite``), claim it in
    ``held`` (:func:`numcnn.rundir.claimed`) and read the run to resume: ``(checkpoint payload
    or None, metrics history, segments)``.

    Under MPI rank 0 does it and the other ranks wait for its verdict (and get nothing)."""
    out = Path(config.out)

    def prepare():
        rundir.prepare_out(out, config.resume, config.overwrite, log, held)
        if not config.resume:
            return None, [], []
        return rundir.load_resume_state(out, config, log, warn)

    if dp is None:
        return prepare()
    if dp.is_root:
        return dp.agree(prepare, root_only=True)
    dp.agree(None, root_only=True)
    return None, [], []


def _setup(config: TrainConfig, dp) -> _Run:
    """A fresh model (seeded), the data, the loaders, the optimizer and the scheduler."""
    dtype = DTYPES[config.dtype]
    nc_random.manual_seed(config.seed)
    model = models.get_model(config.model, **config.model_options)
    if dtype != np.float32:
        model.to(dtype)
    lr, augment = config.lr, config.augment
    assert lr is not None and augment is not None, "_fit resolves the config first"
    base_tf, train_tf, test_tf = preprocessing(config.model, config.dataset, augment, dtype)
    if dp is None:
        train_set, test_set = _load_data(config, base_tf)
    else:  # a missing data set is one error line, whichever rank meets it
        train_set, test_set = dp.agree(lambda: _load_data(config, base_tf))
    train_loader = data.DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed,
                                   transform=train_tf)
    test_loader = data.DataLoader(test_set, batch_size=500, transform=test_tf)
    optimizer = build_optimizer(config, model.parameters(), lr)
    scheduler = build_scheduler(config, optimizer, lr, len(train_loader))
    return _Run(config, model, optimizer, scheduler, train_loader, test_loader, train_set,
                test_set, dp)


def _load_data(config: TrainConfig, transform):
    """The training and test splits; an empty one is an error."""
    dataset_cls = DATASETS[config.dataset]
    train_set = dataset_cls(config.data_dir, train=True, transform=transform,
                            limit=config.limit, download=config.download)
    test_set = dataset_cls(config.data_dir, train=False, transform=transform,
                           limit=config.test_limit, download=config.download)
    for split, subset in (("training", train_set), ("test", test_set)):
        if len(subset) == 0:
            raise ValueError(f"the {config.dataset} {split} split holds no images; there "
                             f"is nothing to {'train' if split == 'training' else 'test'} on")
    return train_set, test_set


def _restore(run: _Run, payload: dict | None) -> int:
    """Continue from a checkpoint's ``payload``: model, optimizer, scheduler and generator
    state; returns the epoch it ended with (0 for a new run)."""
    if payload is None:
        return 0
    model, optimizer, scheduler = run.model, run.optimizer, run.scheduler
    model.load_state_dict(payload["model_state"])
    fresh = [{k: g[k] for k in ("lr", "momentum", "betas") if k in g}
             for g in optimizer.param_groups]
    optimizer.load_state_dict(payload["optimizer"])
    start_epoch = int(payload["epoch"])
    planned = payload.get("train_config", {}).get("epochs", run.config.epochs)
    if scheduler is not None and payload.get("scheduler") is not None:
        if planned == run.config.epochs:
            scheduler.load_state_dict(payload["scheduler"])
        else:
            # a longer (or shorter) run: follow the schedule planned for the new total
            # from the step reached, instead of the one the old total had planned
            for group, hyper in zip(optimizer.param_groups, fresh):
                group.update(hyper)
            for _ in range(start_epoch * len(run.train_loader)):
                scheduler.step()
    nc_random.set_rng_state(payload["rng_state"])
    return start_epoch


def _start_files(run: _Run, history: list, segments: list, log) -> None:
    """Replace an old run (``overwrite``), and write the metrics and settings the run starts
    from."""
    if run.config.overwrite:
        rundir.remove_run(run.out, log)
    # the checkpoint is the truth: metrics.jsonl holds exactly its epochs from here on
    atomic.write_text(run.out / "metrics.jsonl",
                      "".join(rundir.metrics_line(r) for r in history))
    rundir.write_config(run.out, run.config, segments)


def _train_epochs(run: _Run, start_epoch: int, history: list, segments: list, log) -> dict:
    """Train from ``start_epoch`` to the planned total (or early stopping), evaluate and save
    after each epoch; returns the last epoch's metrics."""
    config = run.config
    row: dict = history[-1] if history else {}
    if config.patience is not None and history and _stale_epochs(history) >= config.patience:
        log(f"the run stopped early after epoch {start_epoch}: no better test accuracy for "
            f"{_stale_epochs(history)} epochs (--patience {config.patience}); nothing to train")
        return row
    if start_epoch >= config.epochs:
        log(f"the run is already at epoch {start_epoch} (--epochs {config.epochs}); nothing to "
            f"train")
    best_acc = max((r["test_acc"] for r in history), default=-1.0)
    for epoch in range(start_epoch + 1, config.epochs + 1):
        row, result, lr_steps = _run_epoch(run, epoch)
        history.append(row)
        row["epochs_without_improvement"] = _stale_epochs(history)
        stop = config.patience is not None and row["epochs_without_improvement"] >= config.patience
        if stop:
            row["stopped_early"] = True
        if config.log_lr:
            row["lr_steps"] = lr_steps
        improved = result["accuracy"] > best_acc
        if run.is_root:
            _save_epoch(run, epoch, row, result["confusion"], improved, history, segments)
        if improved:
            best_acc = result["accuracy"]
        log(f"epoch {epoch:>2}/{config.epochs}  train loss {row['train_loss']:.4f} "
            f"acc {100 * row['train_acc']:.2f}%  test loss {row['test_loss']:.4f} "
            f"acc {100 * row['test_acc']:.2f}%  lr {row['lr']:.4g}  {row['seconds']:.1f}s  "
            f"{row['images_per_second']:.0f} img/s")
        if stop:
            log(f"early stopping: no better test accuracy for {config.patience} epochs "
                f"(best {100 * best_acc:.2f}% at epoch "
                f"{epoch - row['epochs_without_improvement']})")
            break
    if row:
        log(f"test accuracy: {100 * row['test_acc']:.2f}% ({config.model} on {config.dataset}, "
            f"{row['epoch']} epochs); checkpoints in {run.out}")
    return row


def _run_epoch(run: _Run, epoch: int) -> tuple[dict, dict, list[float]]:
    """Train one epoch and evaluate; returns the epoch's metrics, the test result and the
    learning rate of every step (when ``log_lr``)."""
    config, dp = run.config, run.dp
    run.train_loader.set_epoch(epoch - 1)
    lr_now = _current_lr(run.optimizer)
    bar = Progress(len(run.train_loader), f"epoch {epoch}/{config.epochs}",
                   config.progress if run.is_root else False)
    lr_steps: list[float] = []
    extra: dict = {"lr_log": lr_steps} if config.log_lr else {}
    if dp is not None:
        extra["sync"] = dp  # distributed: sharded batches, gradients summed over the ranks
    try:
        train_loss, train_acc, seconds, ips = train_epoch(run.model, run.train_loader,
                                                          run.optimizer, run.scheduler, bar,
                                                          **extra)
    finally:
        bar.close()
    result = evaluate(run.model, run.test_loader, len(DATASETS[config.dataset].classes),
                      sync=dp)
    if not math.isfinite(result["loss"]):  # the epoch's last steps broke the weights
        raise TrainingDiverged(
            f"the test loss became {result['loss']} after epoch {epoch}: the weights diverged "
            f"in the epoch's last steps; try a smaller --lr")
    row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
           "test_loss": result["loss"], "test_acc": result["accuracy"], "lr": lr_now,
           "seconds": seconds, "images_per_second": ips,
           "per_class_acc": [None if np.isnan(a) else float(a)
                             for a in result["per_class_accuracy"]]}
    return row, result, lr_steps


def _save_epoch(run: _Run, epoch: int, row: dict, confusion, improved: bool, history: list,
                segments: list) -> None:
    """Write the epoch's files: metrics, confusion matrix, ``last.npz`` and ``best.npz``
    (when ``improved``).

    A run stopped before last.npz is in place redoes this epoch on resume (the metrics then are
    cut back to its epochs), so best.npz comes after it: written first, it would hold an epoch
    the resumed run drops. One stopped between the two gets best.npz from last.npz on resume
    (:func:`numcnn.rundir.load_resume_state`). Each file is replaced atomically: never a torn one.
    """
    out, config = run.out, run.config
    atomic.write_text(out / "metrics.jsonl", "".join(rundir.metrics_line(r) for r in history))
    atomic.write_bytes(out / "confusion.csv", lambda f: np.savetxt(
        f, confusion, fmt="%d", delimiter=","))
    state = (run.model, run.optimizer, run.scheduler, config, epoch, row, segments)
    save_checkpoint(out / "last.npz", *state)
    if improved:
        save_checkpoint(out / "best.npz", *state)
