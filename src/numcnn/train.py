"""Training and evaluation: the loop, per-epoch metrics, checkpoints and exact resume.

``fit(TrainConfig(...))`` trains a model from :mod:`numcnn.models` on MNIST or Fashion-MNIST,
evaluates on the test split after every epoch, appends one JSON line per epoch to
``<out>/metrics.jsonl`` and writes ``<out>/last.npz`` (every epoch) and ``<out>/best.npz`` (best
test accuracy) atomically. ``resume=True`` continues from ``last.npz`` up to ``epochs`` in total
and produces exactly the metrics an uninterrupted run would have.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import checkpoint, data, models, optim
from . import functional as F
from . import random as nc_random
from .autograd import Tensor, no_grad
from .metrics import RunningAverage, confusion_matrix, per_class_accuracy

DATASETS = {"mnist": data.MNIST, "fashion-mnist": data.FashionMNIST}
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "onecycle", "step", "none")
DTYPES = {"float32": np.float32, "float64": np.float64}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (the ``numcnn train`` flags)."""

    model: str = "lenet5"
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None            # None: the model's default
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    seed: int = 0
    out: str = "runs/default"
    resume: bool = False
    data_dir: str | None = None
    limit: int | None = None
    test_limit: int | None = None
    dtype: str = "float32"
    augment: bool | None = None        # None: the model's default
    model_options: dict = field(default_factory=dict)
    progress: bool | None = None       # None: a bar only on a terminal
    download: bool = True
    distributed: bool = False          # data parallel over MPI, see numcnn.distributed

    def validate(self) -> None:
        if self.model not in models.MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {sorted(models.MODELS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {sorted(DATASETS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose from {SCHEDULERS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose from {sorted(DTYPES)}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")


#: Per-model defaults that reach the accuracy targets (see README).
MODEL_DEFAULTS = {
    "lenet5": {"lr": {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}, "augment": False},
    "convnet": {"lr": {"sgd": 0.05, "adam": 2e-3, "adamw": 2e-3}, "augment": True},
}


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
    if config.optimizer == "sgd":
        return optim.SGD(parameters, lr=lr, momentum=config.momentum,
                         weight_decay=config.weight_decay, nesterov=config.momentum > 0)
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


def train_epoch(model, loader, optimizer, scheduler=None, progress: Progress | None = None):
    """One pass over ``loader``; returns (mean loss, accuracy, seconds, images/second)."""
    model.train()
    stats = RunningAverage()
    start = time.perf_counter()
    for x, y in loader:
        logits = model(Tensor(x))
        loss = F.cross_entropy(logits, y)
        value = float(loss.item())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the training loss became {value} after {stats.count} images of this epoch; "
                f"try a smaller --lr")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        stats.update(value, logits.data, y)
        if progress is not None:
            progress.update(stats, stats.count / max(time.perf_counter() - start, 1e-9))
    seconds = time.perf_counter() - start
    return stats.loss, stats.accuracy, seconds, stats.count / max(seconds, 1e-9)


def evaluate(model, loader, num_classes: int = 10) -> dict:
    """Test loss, accuracy, per-class accuracy and confusion matrix of ``model`` on ``loader``."""
    model.eval()
    stats = RunningAverage()
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    with no_grad():
        for x, y in loader:
            logits = model(Tensor(x))
            stats.update(float(F.cross_entropy(logits, y).item()), logits.data, y)
            confusion += confusion_matrix(y, logits.data.argmax(axis=1), num_classes)
    return {"loss": stats.loss, "accuracy": stats.accuracy, "confusion": confusion,
            "per_class_accuracy": per_class_accuracy(confusion)}


def _current_lr(optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def save_checkpoint(path, model, optimizer, scheduler, config: TrainConfig, epoch: int,
                    metrics: dict | None = None) -> Path:
    """Model state, architecture, optimizer/scheduler state, epoch and RNG state, atomically."""
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
    }
    return checkpoint.save(path, payload)


def load_model(path):
    """Rebuild the model stored in a checkpoint; returns ``(model, payload)``."""
    payload = checkpoint.load(path)
    for key in ("arch", "model_config", "model_state"):
        if key not in payload:
            raise checkpoint.CheckpointError(f"{path} holds no model ({key!r} is missing)")
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


def _log(line: str) -> None:
    print(line, flush=True)


def _read_metrics(path: Path, up_to_epoch: int) -> list[dict]:
    """The metrics lines of epochs <= up_to_epoch (a crash may have left a later one)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("epoch", 0) <= up_to_epoch]


def fit(config: TrainConfig, log=_log) -> dict:
    """Train as configured; returns the last epoch's metrics (and writes everything to ``out``)."""
    config.validate()
    if config.distributed:  # distributed: data parallel over MPI (numcnn.distributed)
        from .distributed import DataParallel, run_or_abort

        dp = DataParallel(log=log)
        if dp.is_root:
            log(f"data parallel over {dp.size} {'rank' if dp.size == 1 else 'ranks'}: "
                f"global batch {config.batch_size}, "
                f"{math.ceil(config.batch_size / dp.size)} images per rank or fewer")
        return run_or_abort(_fit, config, log if dp.is_root else (lambda line: None), dp,
                            comm=dp.comm)
    return _fit(config, log)


def _fit(config: TrainConfig, log=_log, dp=None) -> dict:
    """The body of :func:`fit`; ``dp``: a :class:`numcnn.distributed.DataParallel` or None."""
    is_root = dp is None or dp.is_root  # distributed: only rank 0 writes files
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    defaults = MODEL_DEFAULTS.get(config.model, {"lr": {}, "augment": False})
    lr = config.lr if config.lr is not None else defaults["lr"].get(config.optimizer, 0.01)
    augment = defaults["augment"] if config.augment is None else config.augment
    dtype = DTYPES[config.dtype]

    nc_random.manual_seed(config.seed)
    model = models.get_model(config.model, **config.model_options)
    if dtype != np.float32:
        model.to(dtype)
    base_tf, train_tf, test_tf = preprocessing(config.model, config.dataset, augment, dtype)
    dataset_cls = DATASETS[config.dataset]
    train_set = dataset_cls(config.data_dir, train=True, transform=base_tf, limit=config.limit,
                            download=config.download)
    test_set = dataset_cls(config.data_dir, train=False, transform=base_tf,
                           limit=config.test_limit, download=config.download)
    train_loader = data.DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed,
                                   transform=train_tf)
    test_loader = data.DataLoader(test_set, batch_size=500, transform=test_tf)
    optimizer = build_optimizer(config, model.parameters(), lr)
    scheduler = build_scheduler(config, optimizer, lr, len(train_loader))

    start_epoch = 0
    metrics_path = out / "metrics.jsonl"
    last_path, best_path = out / "last.npz", out / "best.npz"
    history: list[dict] = []
    if config.resume and is_root and last_path.exists():
        payload = checkpoint.load(last_path)
        if payload.get("arch") != config.model:
            raise ValueError(f"{last_path} holds a {payload.get('arch')!r} model but --model is "
                             f"{config.model!r}; resume with --model {payload.get('arch')} or "
                             f"choose another --out")
        model.load_state_dict(payload["model_state"])
        fresh = [{k: g[k] for k in ("lr", "momentum", "betas") if k in g}
                 for g in optimizer.param_groups]
        optimizer.load_state_dict(payload["optimizer"])
        start_epoch = int(payload["epoch"])
        planned = payload.get("train_config", {}).get("epochs", config.epochs)
        if scheduler is not None and payload.get("scheduler") is not None:
            if planned == config.epochs:
                scheduler.load_state_dict(payload["scheduler"])
            else:
                # a longer (or shorter) run: follow the schedule planned for the new total
                # from the step reached, instead of the one the old total had planned
                for group, hyper in zip(optimizer.param_groups, fresh):
                    group.update(hyper)
                for _ in range(start_epoch * len(train_loader)):
                    scheduler.step()
        nc_random.set_rng_state(payload["rng_state"])
        history = _read_metrics(metrics_path, start_epoch)
        log(f"resuming from {last_path} after epoch {start_epoch}")
    elif config.resume:
        log(f"no checkpoint in {out}; starting from scratch")
    if dp is not None:  # distributed: every rank starts from rank 0's state
        start_epoch, history = dp.sync_start(model, optimizer, scheduler, start_epoch, history)
    if is_root:
        metrics_path.write_text("".join(json.dumps(r) + "\n" for r in history))
        (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    best_acc = max((r["test_acc"] for r in history), default=-1.0)

    log(f"training {config.model} on {config.dataset}: {len(train_set)} train / "
        f"{len(test_set)} test images, {model.num_parameters():,} parameters, "
        f"{config.optimizer} lr={lr:g}, batch {config.batch_size}, {config.epochs} epochs")
    row: dict = history[-1] if history else {}
    run_epoch = train_epoch if dp is None else dp.train_epoch  # distributed: sharded batches
    run_eval = evaluate if dp is None else dp.evaluate
    for epoch in range(start_epoch + 1, config.epochs + 1):
        train_loader.set_epoch(epoch - 1)
        lr_now = _current_lr(optimizer)
        bar = Progress(len(train_loader), f"epoch {epoch}/{config.epochs}",
                       config.progress if is_root else False)
        try:
            train_loss, train_acc, seconds, ips = run_epoch(model, train_loader, optimizer,
                                                            scheduler, bar)
        finally:
            bar.close()
        result = run_eval(model, test_loader, len(dataset_cls.classes))
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
               "test_loss": result["loss"], "test_acc": result["accuracy"], "lr": lr_now,
               "seconds": seconds, "images_per_second": ips,
               "per_class_acc": [None if np.isnan(a) else float(a)
                                 for a in result["per_class_accuracy"]]}
        if is_root:
            # last.npz is written last: a run stopped before it redoes this epoch on resume
            # (dropping its metrics line), one stopped after it has every file up to date
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            np.savetxt(out / "confusion.csv", result["confusion"], fmt="%d", delimiter=",")
            if result["accuracy"] > best_acc:
                best_acc = result["accuracy"]
                save_checkpoint(best_path, model, optimizer, scheduler, config, epoch, row)
            save_checkpoint(last_path, model, optimizer, scheduler, config, epoch, row)
        log(f"epoch {epoch:>2}/{config.epochs}  train loss {train_loss:.4f} "
            f"acc {100 * train_acc:.2f}%  test loss {result['loss']:.4f} "
            f"acc {100 * result['accuracy']:.2f}%  lr {lr_now:.4g}  {seconds:.1f}s  "
            f"{ips:.0f} img/s")
    if row:
        log(f"test accuracy: {100 * row['test_acc']:.2f}% ({config.model} on {config.dataset}, "
            f"{row['epoch']} epochs); checkpoints in {out}")
    return row
