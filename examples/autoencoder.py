"""A small convolutional autoencoder on MNIST: Conv2d down, ConvTranspose2d up.

    python examples/autoencoder.py                      # 3 epochs on the bundled MNIST
    python examples/autoencoder.py --epochs 1 --train-limit 6000 --out digits.png

The encoder halves the resolution twice with strided convolutions (28 -> 14 -> 7), the second
one producing a 4 x 7 x 7 code (196 numbers for 784 pixels, no activation); the decoder doubles
the resolution back with transposed convolutions (7 -> 14 -> 28; ``output_padding=1`` picks 14 and
28 out of the sizes a stride-2 conv maps to 7 and 14). A sigmoid keeps the pixels in [0, 1] and
the loss is the mean squared error to the input image. Each epoch prints the test
reconstruction MSE; at the end a PNG shows test digits (odd rows) over their reconstructions
(even rows). Needs pillow or matplotlib for the PNG (``pip install 'numcnn[image]'``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import numcnn as nc
import numcnn.functional as F
from numcnn import nn
from numcnn.data import MNIST, DataLoader, ToFloat


def autoencoder(width: int = 32, code: int = 4) -> nn.Sequential:
    """(N, 1, 28, 28) -> code (N, code, 7, 7) -> (N, 1, 28, 28) in [0, 1]: with code=4 the 784
    pixels pass through 196 numbers."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, stride=2, padding=1), nn.ReLU(),                # 28 -> 14
        nn.Conv2d(width, code, 3, stride=2, padding=1),                        # 14 -> 7, code
        nn.ConvTranspose2d(code, width, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),                                                             # 7 -> 14
        nn.ConvTranspose2d(width, 1, 3, stride=2, padding=1, output_padding=1),
        nn.Sigmoid(),                                                          # 14 -> 28
    )


def reconstruction_mse(model, images: np.ndarray, batch_size: int = 500) -> float:
    """Mean squared reconstruction error per pixel over ``images`` (N, 1, 28, 28)."""
    model.eval()
    total = 0.0
    with nc.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size]
            total += float(((model(x).data - x) ** 2).sum())
    model.train()
    return total / images.size


def save_grid(path: Path, originals: np.ndarray, reconstructions: np.ndarray,
              per_row: int = 8) -> None:
    """Rows of ``per_row`` digits: originals, then their reconstructions below, repeated."""
    n = len(originals) - len(originals) % per_row
    rows = []
    for start in range(0, n, per_row):
        for batch in (originals, reconstructions):
            tiles = [np.pad(img[0], 1, constant_values=1.0) for img in batch[start:start + per_row]]
            rows.append(np.concatenate(tiles, axis=1))
    grid = (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        from PIL import Image
    except ImportError:
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise SystemExit("writing the PNG needs pillow or matplotlib: "
                             "pip install 'numcnn[image]'") from None
        plt.imsave(path, grid, cmap="gray", vmin=0, vmax=255)
        return
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2),
                                           Image.NEAREST).save(path)


def main(argv=None) -> list[float]:
    """Train, print the test MSE per epoch, write the PNG; return the test MSE before training
    and after each epoch."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    p.add_argument("--width", type=int, default=32, help="channels between image and code")
    p.add_argument("--code", type=int, default=4, help="channels of the 7x7 code")
    p.add_argument("--train-limit", type=int, default=None, help="use the first N train images")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test images")
    p.add_argument("--data-dir", default=None, help="folder holding mnist/ (default: bundled)")
    p.add_argument("--out", type=Path, default=Path("autoencoder.png"), help="PNG grid path")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    nc.manual_seed(args.seed)
    train = MNIST(args.data_dir, train=True, transform=ToFloat(), limit=args.train_limit)
    test = MNIST(args.data_dir, train=False, transform=ToFloat(), limit=args.test_limit)
    test_images = test[:len(test)][0]                                   # (n, 1, 28, 28) in [0, 1]
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    model = autoencoder(args.width, args.code)
    opt = nc.optim.Adam(model.parameters(), lr=args.lr)
    history, start = [reconstruction_mse(model, test_images)], time.perf_counter()
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters; {len(train):,} train and "
          f"{len(test):,} test images; test MSE before training: {history[0]:.4f}")
    for epoch in range(1, args.epochs + 1):
        for x, _ in loader:
            loss = F.mse_loss(model(x), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        history.append(reconstruction_mse(model, test_images))
        print(f"epoch {epoch}: test reconstruction MSE {history[-1]:.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    model.eval()
    with nc.no_grad():
        shown = test_images[:32]
        save_grid(args.out, shown, model(shown).data)
    print(f"wrote {args.out}: test digits (odd rows) over their reconstructions (even rows)")
    return history


if __name__ == "__main__":
    main(sys.argv[1:])
