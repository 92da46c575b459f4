"""Figures of a training run with matplotlib (optional extra ``numcnn[plot]``).

``plot_run(out_dir)`` writes ``curves.png`` (loss and accuracy per epoch, from
``metrics.jsonl``), ``filters.png`` (first-layer kernels), ``feature_maps.png`` (first-layer
activations of one test image) and ``confusion.png`` (test confusion matrix).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .metrics import MetricsError, read_metrics_file


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(
            "plotting needs matplotlib: pip install 'numcnn[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    """Write a figure atomically (a temporary PNG beside ``path``, then a rename)."""
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return Path(path)


def plot_curves(rows: list[dict], path: Path) -> Path:
    """Train/test loss and accuracy against the epoch."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-o"), ("test", "-s")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in rows], style, label=split)
        ax_acc.plot(epochs, [100 * r[f"{split}_acc"] for r in rows], style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def _grid(images: np.ndarray, path: Path, title: str, cmap="gray") -> Path:
    plt = _pyplot()
    n = len(images)
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, k in zip(axes.flat, images, range(n)):
        ax.imshow(img, cmap=cmap)
        ax.set_title(str(k), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_filters(weight: np.ndarray, path: Path) -> Path:
    """Each output channel's kernel (input channel 0), shape (C_out, C_in, kh, kw)."""
    return _grid(weight[:, 0], path, f"first-layer filters {tuple(weight.shape)}", cmap="bwr")


def plot_feature_maps(maps: np.ndarray, path: Path, label: str) -> Path:
    """Activations (C, H, W) of one image after the first conv layer."""
    return _grid(maps, path, f"first-layer feature maps of a test image ({label})", cmap="viridis")


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(confusion, cmap="Blues")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted",
           ylabel="true", title="test confusion matrix")
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(classes, fontsize=8)
    for (i, j), v in np.ndenumerate(confusion):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > confusion.max() / 2 else "black")
    fig.colorbar(im)
    fig.tight_layout()
    return _save(fig, path)


def read_metrics(out_dir: Path, warn=None) -> list[dict]:
    """The epochs of ``out_dir/metrics.jsonl``; a torn last line is skipped (with a warning to
    ``warn``, default standard error), any other malformed line raises naming file and line."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {out_dir} a numcnn train --out folder?")
    rows, torn = read_metrics_file(path)
    if torn:
        (warn or (lambda line: print(f"numcnn: warning: {line}", file=sys.stderr)))(torn)
    if not rows:
        raise MetricsError(f"{path} holds no epoch yet: nothing to plot")
    return rows


def _read_confusion(path: Path, classes: int):
    """The K x K matrix of ``confusion.csv`` (None when there is none or no classes)."""
    if not classes or not path.exists():
        return None
    try:
        confusion = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable confusion matrix: {err}") from None
    if confusion.shape != (classes, classes):
        raise ValueError(f"{path} holds a {confusion.shape} matrix, expected {classes}x{classes}")
    return confusion


def plot_run(out_dir, data_dir=None, download: bool = True) -> list[Path]:
    """Write every figure of a run folder; returns the paths written.

    Everything the figures need (metrics, checkpoint, one test image, fetched only when
    ``download``) is read before the first figure is written, so a failure writes nothing.
    """
    from . import functional as F
    from .autograd import Tensor, no_grad
    from .nn import Conv2d
    from .train import DATASETS, checkpoint_dataset, load_model, preprocessing

    out_dir = Path(out_dir)
    metrics = read_metrics(out_dir)
    ckpt = out_dir / "best.npz" if (out_dir / "best.npz").exists() else out_dir / "last.npz"
    if not ckpt.exists():
        return [plot_curves(metrics, out_dir / "curves.png")]
    model, payload = load_model(ckpt)
    conv = next((m for m in model.modules() if isinstance(m, Conv2d)), None)
    test = None
    if conv is not None:
        dataset = checkpoint_dataset(payload, ckpt)
        base, _, normalize = preprocessing(model.arch, dataset, False, conv.weight.dtype)
        test = DATASETS[dataset](data_dir, train=False, transform=base, limit=1,
                                 download=download)
    confusion = _read_confusion(out_dir / "confusion.csv", len(test.classes) if test else 0)
    written = [plot_curves(metrics, out_dir / "curves.png")]
    if conv is not None:
        written.append(plot_filters(conv.weight.data, out_dir / "filters.png"))
        x, y = test[np.arange(1)]
        with no_grad():
            maps = F.conv2d(Tensor(normalize.batch(x)), conv.weight, conv.bias, conv.stride,
                            conv.padding, conv.dilation, conv.groups).data[0]
        written.append(plot_feature_maps(maps, out_dir / "feature_maps.png",
                                         f"label {test.classes[int(y[0])]}"))
        if confusion is not None:
            written.append(plot_confusion(confusion, list(test.classes), out_dir / "confusion.png"))
    return written
