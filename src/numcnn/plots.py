"""Figures of a training run with matplotlib (optional extra ``numcnn[plot]``).

``plot_run(out_dir)`` writes ``curves.png`` (loss, accuracy and learning rate per epoch, from
``metrics.jsonl``, the run's name in the title), ``filters.png`` (the first conv layer's kernels,
every input channel, on one colour scale symmetric about zero: white is 0), ``feature_maps.png``
(a test image with the model's prediction beside the output of every conv layer) and
``confusion.png`` (test confusion matrix).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .metrics import MetricsError, read_metrics_file

#: Kernels (or feature maps) per row of a figure.
PER_ROW = 8
#: The filters' colour map: blue negative, white zero, red positive.
FILTER_CMAP = "bwr"


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


# --- curves ----------------------------------------------------------------------------------

def _lr_points(rows: list[dict]) -> tuple[list[float], list[float], bool]:
    """(x, lr, per_step): every step's rate at fractional epochs ``epoch-1 + k/steps`` when
    the run logged ``lr_steps`` (``--log-lr``), else each epoch's first-step ``lr`` at the epoch."""
    if rows and all(r.get("lr_steps") for r in rows):
        xs, lrs = [], []
        for r in rows:
            steps = r["lr_steps"]
            xs += [r["epoch"] - 1 + k / len(steps) for k in range(len(steps))]
            lrs += [float(v) for v in steps]
        return xs, lrs, True
    kept = [r for r in rows if r.get("lr") is not None]
    return [r["epoch"] for r in kept], [float(r["lr"]) for r in kept], False


def plot_curves(rows: list[dict], path: Path, run_name: str | None = None) -> Path:
    """Train/test loss, accuracy and the learning rate against the epoch (integer ticks)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(14, 4))
    for split, style in (("train", "-o"), ("test", "-s")):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in rows], style, label=split)
        ax_acc.plot(epochs, [100 * r[f"{split}_acc"] for r in rows], style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend()
    xs, lrs, per_step = _lr_points(rows)
    if lrs:
        ax_lr.plot(xs, lrs, "-" if per_step else "-o", color="tab:green")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax_lr.set_ylim(bottom=0)
    else:
        ax_lr.text(0.5, 0.5, "no learning rate in metrics.jsonl", ha="center", va="center",
                   transform=ax_lr.transAxes)
    ax_lr.set(xlabel="epoch", ylabel="learning rate",
              title="learning rate, every step" if per_step else "learning rate (first step of "
              "each epoch)")
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
    last = rows[-1]
    fig.suptitle(f"{run_name + ': ' if run_name else ''}{len(rows)} epoch"
                 f"{'s' if len(rows) != 1 else ''}, test accuracy "
                 f"{100 * last['test_acc']:.2f}% after epoch {last['epoch']}")
    fig.tight_layout()
    return _save(fig, path)


# --- filters ---------------------------------------------------------------------------------

def filter_mosaic(weight: np.ndarray) -> np.ndarray:
    """(C_out, C_in, kh, kw) -> one (C_out, C_in·(kw+1)−1) image row per output channel: each
    filter's C_in kernels side by side, one NaN column between them (drawn as a gap)."""
    C_out, C_in, kh, kw = weight.shape
    mosaic = np.full((C_out, kh, C_in * (kw + 1) - 1), np.nan)
    for c in range(C_in):
        mosaic[:, :, c * (kw + 1):c * (kw + 1) + kw] = weight[:, c]
    return mosaic


def plot_filters(weight: np.ndarray, path: Path, title: str | None = None) -> Path:
    """Every kernel of a conv weight (C_out, C_in, kh, kw): one panel per output channel q with
    its C_in input-channel kernels side by side, all on one colour scale symmetric about 0
    (``vmin = −max|W|``, ``vmax = max|W|``, white is zero) with a colorbar."""
    plt = _pyplot()
    from matplotlib.colors import Normalize

    weight = np.asarray(weight, dtype=np.float64)
    C_out, C_in, _kh, kw = weight.shape
    m = float(np.abs(weight).max()) or 1.0
    norm = Normalize(vmin=-m, vmax=m)
    cmap = plt.get_cmap(FILTER_CMAP).with_extremes(bad="0.6")   # gaps between input channels
    per_row = max(1, min(C_out, PER_ROW // min(C_in, PER_ROW)))
    rows = -(-C_out // per_row)
    width = C_in * (kw + 1) / (kw + 1)
    fig, axes = plt.subplots(rows, per_row, squeeze=False,
                             figsize=(1.3 * width * per_row + 1.2, 1.4 * rows + 0.8))
    mosaic = filter_mosaic(weight)
    for ax in axes.flat:
        ax.axis("off")
    image = None
    for q, ax in zip(range(C_out), axes.flat):
        ax.axis("on")
        image = ax.imshow(mosaic[q], cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(f"filter {q}", fontsize=8)
        ax.set_yticks([])
        if C_in > 1:
            ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(C_in)],
                          [f"c{c}" for c in range(C_in)], fontsize=7)
        else:
            ax.set_xticks([])
    fig.colorbar(image, ax=axes.ravel().tolist(), label="weight (white = 0)", shrink=0.9)
    fig.suptitle(title or f"conv filters {tuple(weight.shape)}: "
                 f"{C_out} filters x {C_in} input channel{'s' if C_in != 1 else ''}")
    return _save(fig, path)


# --- feature maps ----------------------------------------------------------------------------

def plot_feature_maps(image: np.ndarray, layers: list[tuple[str, np.ndarray]], path: Path,
                      label: str, prediction: str) -> Path:
    """The input ``image`` (C, H, W) with its label and the model's prediction, beside the
    output (C, H, W) of each conv layer in ``layers`` (name, maps): one row (or more, at
    :data:`PER_ROW` maps a row) per layer, each layer on its own colour scale with a colorbar."""
    plt = _pyplot()
    from matplotlib.colors import Normalize

    blocks = [(name, maps, -(-len(maps) // PER_ROW)) for name, maps in layers]
    total = max(1, sum(n for _, _, n in blocks))
    cols = min(PER_ROW, max((len(m) for _, m, _ in blocks), default=1))
    fig = plt.figure(figsize=(3.1 + 1.35 * cols + 0.8, 1.5 * total + 0.9))
    # columns: the input, a gap for the layer names, the maps, the colorbars
    grid = fig.add_gridspec(total, cols + 3, width_ratios=[1.9, 0.35] + [1] * cols + [0.12])
    ax_in = fig.add_subplot(grid[:min(total, 2), 0])
    shown = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    ax_in.imshow(shown, cmap="gray")
    ax_in.set_title(f"input\nlabel: {label}\npredicted: {prediction}", fontsize=9)
    ax_in.set_xticks([])
    ax_in.set_yticks([])
    row = 0
    for name, maps, n_rows in blocks:
        norm = Normalize(vmin=float(maps.min()), vmax=float(maps.max()))
        last = None
        for k, fmap in enumerate(maps):
            ax = fig.add_subplot(grid[row + k // PER_ROW, 2 + k % PER_ROW])
            last = ax.imshow(fmap, cmap="viridis", norm=norm, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{k}", fontsize=7)
            if k == 0:
                ax.set_ylabel(f"{name}\n{len(maps)}x{maps.shape[1]}x{maps.shape[2]}", fontsize=9)
        fig.colorbar(last, cax=fig.add_subplot(grid[row:row + n_rows, cols + 2]))
        row += n_rows
    fig.suptitle("the output of every conv layer for one test image")
    fig.subplots_adjust(left=0.02, right=0.95, top=1 - 0.7 / (1.5 * total + 0.9), bottom=0.03,
                        wspace=0.25, hspace=0.45)
    return _save(fig, path)


def conv_outputs(model, x: np.ndarray) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """One forward pass of ``model`` on ``x`` (1, C, H, W): its logits and the output of every
    Conv2d layer (name, (C_out, H_out, W_out)), in the order they ran."""
    from .autograd import Tensor, no_grad
    from .explain.hooks import watching
    from .nn import Conv2d

    names = {id(m): name for name, m in model.named_modules() if isinstance(m, Conv2d)}
    convs = [m for m in model.modules() if id(m) in names]
    seen: list[tuple[str, np.ndarray]] = []

    def on_call(module, inp):
        return lambda out: seen.append((names[id(module)], np.array(out.data[0])))

    with no_grad(), watching(convs, on_call):
        logits = model(Tensor(x)).data[0]
    return logits, seen


# --- confusion -------------------------------------------------------------------------------

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


# --- a run folder ----------------------------------------------------------------------------

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


def run_name(out_dir) -> str:
    """The folder's name, with the model and data set of its ``config.json`` when readable."""
    out_dir = Path(out_dir)
    name = out_dir.resolve().name
    try:
        config = json.loads((out_dir / "config.json").read_text())
        return f"{name} ({config['model']} on {config['dataset']})"
    except (OSError, ValueError, KeyError, TypeError):
        return name


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
    from .nn import Conv2d
    from .train import DATASETS, checkpoint_dataset, load_model, preprocessing

    out_dir = Path(out_dir)
    metrics = read_metrics(out_dir)
    name = run_name(out_dir)
    ckpt = out_dir / "best.npz" if (out_dir / "best.npz").exists() else out_dir / "last.npz"
    if not ckpt.exists():
        return [plot_curves(metrics, out_dir / "curves.png", name)]
    model, payload = load_model(ckpt)
    model.eval()
    conv = next((m for m in model.modules() if isinstance(m, Conv2d)), None)
    if conv is None:  # no filters or feature maps to show, nor the class names of a confusion
        return [plot_curves(metrics, out_dir / "curves.png", name)]
    dataset = checkpoint_dataset(payload, ckpt)
    base, _, normalize = preprocessing(model.arch, dataset, False, conv.weight.dtype)
    test = DATASETS[dataset](data_dir, train=False, transform=base, limit=1, download=download)
    confusion = _read_confusion(out_dir / "confusion.csv", len(test.classes))
    written = [plot_curves(metrics, out_dir / "curves.png", name)]
    written.append(plot_filters(conv.weight.data, out_dir / "filters.png",
                                f"{name}: first conv layer's filters {tuple(conv.weight.shape)}"))
    x, y = test[np.arange(1)]
    logits, layers = conv_outputs(model, normalize.batch(x))
    p = np.exp(logits - logits.max())
    p /= p.sum()
    k = int(np.argmax(p))
    written.append(plot_feature_maps(
        np.asarray(x[0]), layers, out_dir / "feature_maps.png", test.classes[int(y[0])],
        f"{test.classes[k]} ({100 * p[k]:.1f}%)"))
    if confusion is not None:
        written.append(plot_confusion(confusion, list(test.classes), out_dir / "confusion.png"))
    return written
