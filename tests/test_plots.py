"""The figures of ``numcnn plot``, read back from matplotlib: axes, tick labels, colour limits,
titles. Each drawing function is called for real; ``_save`` is replaced to keep the figure."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from numcnn import models, plots
from numcnn.train import TrainConfig, save_checkpoint


@pytest.fixture()
def figures(monkeypatch):
    """Every figure a plot function draws, kept open (and closed at the end of the test)."""
    import matplotlib.pyplot as plt

    kept = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.append(fig) or path)
    yield kept
    for fig in kept:
        plt.close(fig)


def rows(epochs: int, lr_steps: int = 0) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "train_loss": 1.0 / e, "test_loss": 1.1 / e, "train_acc": 0.5 + 0.04 * e,
               "test_acc": 0.5 + 0.03 * e, "lr": 0.1 / e}
        if lr_steps:
            row["lr_steps"] = [0.1 / e - 0.01 * k / lr_steps for k in range(lr_steps)]
        out.append(row)
    return out


def tick_values(axis) -> list[float]:
    """The x tick positions that lie inside the axes' limits (the ones drawn)."""
    lo, hi = axis.get_xlim()
    return [t for t in axis.get_xticks() if lo - 1e-9 <= t <= hi + 1e-9]


@pytest.mark.parametrize("epochs", [2, 3, 7, 13])
def test_curves_have_integer_epoch_ticks(figures, tmp_path, epochs):
    plots.plot_curves(rows(epochs), tmp_path / "c.png", "run-a")
    (fig,) = figures
    for ax in fig.axes:
        ticks = tick_values(ax)
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
        assert ax.get_xlabel() == "epoch"
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert all("." not in s for s in labels), labels


def test_curves_have_the_run_name_and_the_learning_rate_panel(figures, tmp_path):
    data = rows(4)
    plots.plot_curves(data, tmp_path / "c.png", "lenet (lenet5 on mnist)")
    (fig,) = figures
    assert fig._suptitle.get_text().startswith("lenet (lenet5 on mnist): 4 epochs")
    assert [ax.get_title() for ax in fig.axes] == [
        "loss", "accuracy", "learning rate (first step of each epoch)"]
    (line,) = fig.axes[2].get_lines()
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(line.get_ydata(), [r["lr"] for r in data])
    assert fig.axes[2].get_ylabel() == "learning rate"
    assert fig.axes[2].get_ylim()[0] == 0
    train, test = fig.axes[1].get_lines()
    np.testing.assert_allclose(train.get_ydata(), [100 * r["train_acc"] for r in data])
    np.testing.assert_allclose(test.get_ydata(), [100 * r["test_acc"] for r in data])


def test_curves_show_every_step_of_a_log_lr_run(figures, tmp_path):
    data = rows(3, lr_steps=5)
    plots.plot_curves(data, tmp_path / "c.png", "r")
    (line,) = figures[0].axes[2].get_lines()
    assert figures[0].axes[2].get_title() == "learning rate, every step"
    np.testing.assert_allclose(line.get_xdata(), [e + k / 5 for e in range(3) for k in range(5)])
    np.testing.assert_allclose(line.get_ydata(), [v for r in data for v in r["lr_steps"]])
    assert all(float(t).is_integer() for t in tick_values(figures[0].axes[2]))


def test_curves_without_a_logged_rate_say_so(figures, tmp_path):
    data = [{k: v for k, v in r.items() if k != "lr"} for r in rows(2)]
    plots.plot_curves(data, tmp_path / "c.png")
    ax = figures[0].axes[2]
    assert not ax.get_lines()
    assert [t.get_text() for t in ax.texts] == ["no learning rate in metrics.jsonl"]
    assert figures[0]._suptitle.get_text().startswith("2 epochs")


def images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


@pytest.mark.parametrize("shape", [(6, 1, 5, 5), (4, 3, 3, 3), (10, 2, 3, 2)])
def test_filters_share_one_symmetric_scale_with_a_colorbar(figures, tmp_path, shape):
    import matplotlib

    w = np.random.default_rng(0).normal(size=shape)
    w[0, 0, 0, 0] = -3.5                                  # the largest magnitude is negative
    plots.plot_filters(w, tmp_path / "f.png")
    (fig,) = figures
    shown = [im for im in images(fig) if im.get_array().ndim == 2]
    assert len(shown) == shape[0]                         # one panel per output channel
    for im in shown:
        assert im.get_clim() == (-3.5, 3.5)
        assert im.get_cmap().name == plots.FILTER_CMAP
    cmap = matplotlib.colormaps[plots.FILTER_CMAP]
    np.testing.assert_allclose(cmap(0.5)[:3], 1.0, atol=0.01)   # zero is white
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylim() == (-3.5, 3.5)
    assert "white = 0" in bars[0].get_ylabel()
    # every input channel is drawn: panel q holds W[q, c] for each c, NaN gaps between
    _kh, kw = shape[2:]
    for q, im in enumerate(shown):
        a = np.ma.filled(im.get_array().astype(float), np.nan)
        for c in range(shape[1]):
            np.testing.assert_array_equal(a[:, c * (kw + 1):c * (kw + 1) + kw], w[q, c])
        if shape[1] > 1:
            assert np.isnan(a[:, kw]).all()
            labels = [t.get_text() for t in im.axes.get_xticklabels()]
            assert labels == [f"c{c}" for c in range(shape[1])]


def test_feature_maps_show_the_input_prediction_and_every_layer(figures, tmp_path):
    rng = np.random.default_rng(1)
    layers = [("conv1", rng.normal(size=(6, 8, 8))), ("conv2", rng.normal(size=(16, 3, 3)) + 5)]
    image = rng.random((1, 12, 12))
    plots.plot_feature_maps(image, layers, tmp_path / "m.png", "7", "7 (98.0%)")
    (fig,) = figures
    ims = images(fig)
    assert len(ims) == 1 + 6 + 16
    np.testing.assert_array_equal(ims[0].get_array(), image[0])
    title = ims[0].axes.get_title()
    assert "label: 7" in title and "predicted: 7 (98.0%)" in title
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel().startswith("conv")]
    assert ylabels == ["conv1\n6x8x8", "conv2\n16x3x3"]
    for k, (_, maps) in enumerate(layers):
        drawn = ims[1 + (6 if k else 0):][:len(maps)]
        assert {im.get_clim() for im in drawn} == {(maps.min(), maps.max())}
        for im, fmap in zip(drawn, maps):
            np.testing.assert_array_equal(im.get_array(), fmap)


def test_conv_outputs_are_every_conv_layers_output():
    from numcnn import functional as F
    from numcnn.autograd import Tensor, no_grad

    model = models.get_model("lenet5").eval()
    x = np.random.default_rng(2).normal(size=(1, 1, 32, 32)).astype(np.float32)
    logits, layers = plots.conv_outputs(model, x)
    assert [m.shape for _, m in layers] == [(6, 28, 28), (16, 10, 10)]
    conv1 = next(m for _, m in model.named_modules() if m.__class__.__name__ == "Conv2d")
    with no_grad():
        first = F.conv2d(Tensor(x), conv1.weight, conv1.bias, conv1.stride, conv1.padding,
                         conv1.dilation, conv1.groups).data[0]
        np.testing.assert_allclose(layers[0][1], first, rtol=1e-6)
        np.testing.assert_allclose(logits, model(Tensor(x)).data[0], rtol=1e-6)
    assert "forward" not in conv1.__dict__                # the layers are left as they were


def test_plot_run_titles_and_figures(figures, tmp_path):
    run = tmp_path / "my-run"
    run.mkdir()
    model = models.get_model("lenet5")
    config = TrainConfig(out=str(run))
    save_checkpoint(run / "last.npz", model, None, None, config, 2)
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "dataset": "mnist"}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(2)))
    written = plots.plot_run(run, download=False)
    assert [p.name for p in written] == ["curves.png", "filters.png", "feature_maps.png"]
    curves, filters, maps = figures
    assert curves._suptitle.get_text().startswith("my-run (lenet5 on mnist): 2 epochs")
    assert filters._suptitle.get_text().startswith("my-run (lenet5 on mnist): first conv")
    assert len(images(maps)) == 1 + 6 + 16
    title = images(maps)[0].axes.get_title()
    assert "label: " in title and "predicted: " in title and "%" in title


def test_plot_run_draws_the_confusion_matrix_with_the_data_sets_class_names(figures, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "last.npz", models.get_model("lenet5"), None, None,
                    TrainConfig(out=str(run)), 1)
    (run / "metrics.jsonl").write_text(json.dumps(rows(1)[0]) + "\n")
    confusion = np.arange(100).reshape(10, 10)
    np.savetxt(run / "confusion.csv", confusion, fmt="%d", delimiter=",")
    written = plots.plot_run(run, download=False)
    assert [p.name for p in written][-1] == "confusion.png"
    drawn = figures[-1]
    np.testing.assert_array_equal(images(drawn)[0].get_array(), confusion)
    labels = [t.get_text() for t in drawn.axes[0].get_xticklabels()]
    assert labels == [str(k) for k in range(10)]
