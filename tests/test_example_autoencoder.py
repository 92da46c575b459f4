"""examples/autoencoder.py runs on a small subset of the bundled MNIST: the test reconstruction
MSE falls epoch after epoch and the PNG grid of digits and reconstructions is written."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "autoencoder.py"


def _load():
    spec = importlib.util.spec_from_file_location("autoencoder_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_autoencoder_learns_on_a_subset(tmp_path, capsys):
    example = _load()
    out = tmp_path / "grid.png"
    history = example.main(["--epochs", "2", "--train-limit", "1024", "--test-limit", "128",
                            "--batch-size", "32", "--out", str(out)])
    assert len(history) == 3
    assert history[1] < 0.5 * history[0] and history[2] < history[1]
    printed = capsys.readouterr().out
    assert printed.count("test reconstruction MSE") == 2 and "wrote" in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    Image = pytest.importorskip("PIL.Image")
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * 8 * 30, 2 * 8 * 30)        # 4 pairs of rows of 8 padded digits


def test_decoder_inverts_the_encoder_shapes():
    example = _load()
    model = example.autoencoder(width=8, code=2)
    x = np.zeros((3, 1, 28, 28), np.float32)
    assert model[:3](x).shape == (3, 2, 7, 7)
    assert model(x).shape == x.shape
