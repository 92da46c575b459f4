"""Layers, containers and initializers with the names and defaults of ``torch.nn``.

>>> import numpy as np
>>> from numcnn import nn
>>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
>>> model(np.ones((3, 2, 2), dtype=np.float32)).shape
(3, 2)
"""
from . import init
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .containers import ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .state import StateDictError

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "StateDictError",
    "Tanh",
    "init",
]
