"""LeNet-5 (LeCun et al., 1998): two convolution + subsampling stages and three dense layers.

Layer shapes for a 32×32 input (MNIST digits padded by 2 pixels), with parameter counts::

    conv1  Conv2d(1, 6, 5)      (N, 1, 32, 32) -> (N, 6, 28, 28)       156
    pool   2×2, stride 2                       -> (N, 6, 14, 14)
    conv2  Conv2d(6, 16, 5)                    -> (N, 16, 10, 10)    2,416
    pool   2×2, stride 2                       -> (N, 16, 5, 5)
    flatten                                    -> (N, 400)
    fc1    Linear(400, 120)                    -> (N, 120)          48,120
    fc2    Linear(120, 84)                     -> (N, 84)           10,164
    fc3    Linear(84, 10)                      -> (N, 10)              850
                                                          total     61,706

The activation (tanh as in the paper, or ReLU) follows conv1, conv2, fc1 and fc2. The paper's
trainable subsampling and sparse C3 connections are replaced by plain pooling and a full
convolution, as in the usual modern rendering (and in PyTorch's tutorial). The layers are named
``conv1, conv2, fc1, fc2, fc3``, so a state dict loads into the same model written in PyTorch.
"""
from __future__ import annotations

from .. import nn
from ..validation import check_choice, check_image_input, check_int

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """LeNet-5 for (N, in_channels, 32, 32) images, giving (N, num_classes) logits.

    Parameters
    ----------
    num_classes : int, default 10
    activation : ``'tanh'`` (default, the paper's) or ``'relu'``
    in_channels : int, default 1
    pool : ``'avg'`` (default, the paper's subsampling) or ``'max'``

    Attributes
    ----------
    arch : str
        ``'lenet5'``, the registry name.
    config : dict
        The constructor arguments (JSON-able): ``get_model(model.arch, **model.config)``
        rebuilds the same architecture.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn.models import LeNet5
    >>> model = LeNet5()
    >>> model(np.zeros((4, 1, 32, 32), dtype=np.float32)).shape
    (4, 10)
    >>> model.num_parameters()
    61706
    >>> model.config
    {'num_classes': 10, 'activation': 'tanh', 'in_channels': 1, 'pool': 'avg'}
    """

    image_size = (32, 32)

    def __init__(self, num_classes=10, activation="tanh", in_channels=1, pool="avg"):
        super().__init__()
        op = "LeNet5"
        check_int(num_classes, "num_classes", op)
        check_int(in_channels, "in_channels", op)
        check_choice(activation, "activation", op, ("tanh", "relu"))
        check_choice(pool, "pool", op, ("avg", "max"))
        self.arch = "lenet5"
        self.config = {"num_classes": int(num_classes), "activation": activation,
                       "in_channels": int(in_channels), "pool": pool}
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.act = nn.Tanh() if activation == "tanh" else nn.ReLU()
        self.pool = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)

    def forward(self, x):
        check_image_input(x, "LeNet5", self.config["in_channels"], self.image_size,
                          "; pad 28×28 MNIST images by 2 pixels on each side")
        x = self.pool(self.act(self.conv1(x)))   # (N, 6, 14, 14)
        x = self.pool(self.act(self.conv2(x)))   # (N, 16, 5, 5)
        x = x.flatten(1)                          # (N, 400)
        x = self.act(self.fc1(x))                 # (N, 120)
        x = self.act(self.fc2(x))                 # (N, 84)
        return self.fc3(x)                        # (N, num_classes)


def lenet5(num_classes=10, activation="tanh", in_channels=1, pool="avg") -> LeNet5:
    """Build :class:`LeNet5` (the registry's ``'lenet5'``)."""
    return LeNet5(num_classes=num_classes, activation=activation, in_channels=in_channels,
                  pool=pool)
