"""A small VGG-style CNN with batch normalization, for 28×28 images such as Fashion-MNIST.

Layout for width w (default 32), hidden size h (default 128), a (N, 1, 28, 28) input::

    features    [conv3×3(w) BN ReLU conv3×3(w) BN ReLU maxpool2 dropout]    -> (N, w, 14, 14)
                [conv3×3(2w) BN ReLU conv3×3(2w) BN ReLU maxpool2 dropout]  -> (N, 2w, 7, 7)
    classifier  flatten -> Linear(2w·7·7, h) BN1d ReLU dropout -> Linear(h, num_classes)

Convolutions pad by 1 (sizes kept) and have no bias: the batch norm right after them would
cancel it. Cost with w = 32: about 0.47 M parameters and 18.7 M multiply-adds per image
forward (conv1 0.23 M, conv2 7.2 M, conv3 3.6 M, conv4 7.2 M, fc 0.4 M), roughly 3.4·10¹²
multiply-adds for one training epoch of 60,000 images (forward and backward) — a few minutes
per epoch on two CPU cores. ``width=16`` quarters the convolution cost.
"""
from __future__ import annotations

from .. import nn
from ..validation import check_image_input, check_int, is_real

__all__ = ["ConvNet", "convnet"]


def _block(c_in: int, c_out: int, dropout: float) -> list[nn.Module]:
    """Two 3×3 conv-BN-ReLU layers, then a 2×2 max pool (halving H and W) and dropout."""
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(dropout),
    ]


class ConvNet(nn.Module):
    """Two conv blocks and a two-layer classifier for (N, in_channels, 28, 28) images.

    Parameters
    ----------
    num_classes : int, default 10
    in_channels : int, default 1
    dropout : float in [0, 1), default 0.25, the drop probability after each block and in
        the classifier
    width : int, default 32, the channels of the first block (the second has twice as many)
    hidden : int, default 128, the size of the hidden dense layer

    Attributes ``arch`` (``'convnet'``) and ``config`` (the constructor arguments) let a
    checkpoint rebuild the model with ``get_model(model.arch, **model.config)``.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn.models import ConvNet
    >>> model = ConvNet(width=8, hidden=32).eval()
    >>> model(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
    (2, 10)
    >>> ConvNet().num_parameters()
    468138
    """

    image_size = (28, 28)

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.25,
                 width: int = 32, hidden: int = 128) -> None:
        super().__init__()
        op = "ConvNet"
        check_int(num_classes, "num_classes", op)
        check_int(in_channels, "in_channels", op)
        check_int(width, "width", op)
        check_int(hidden, "hidden", op)
        if not is_real(dropout) or not 0 <= dropout < 1:
            raise ValueError(f"{op}: dropout must be a probability in [0, 1), got {dropout!r}")
        self.arch = "convnet"
        self.config: dict[str, int | float] = {
            "num_classes": int(num_classes), "in_channels": int(in_channels),
            "dropout": float(dropout), "width": int(width), "hidden": int(hidden)}
        w, (h_img, w_img) = int(width), self.image_size
        self.features = nn.Sequential(*_block(in_channels, w, dropout),
                                      *_block(w, 2 * w, dropout))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * w * (h_img // 4) * (w_img // 4), hidden, bias=False),
            nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        check_image_input(x, "ConvNet", int(self.config["in_channels"]), self.image_size)
        return self.classifier(self.features(x))   # (N, 2w, 7, 7) -> (N, num_classes)


def convnet(num_classes=10, in_channels=1, dropout=0.25, width=32, hidden=128) -> ConvNet:
    """Build :class:`ConvNet` (the registry's ``'convnet'``)."""
    return ConvNet(num_classes=num_classes, in_channels=in_channels, dropout=dropout,
                   width=width, hidden=hidden)
