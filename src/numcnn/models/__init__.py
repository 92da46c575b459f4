"""Ready-made models and a registry that rebuilds them from ``(arch, config)``.

>>> from numcnn import models
>>> model = models.get_model("lenet5", activation="relu")
>>> model.arch, model.config["activation"], models.input_size("lenet5")
('lenet5', 'relu', (1, 32, 32))
"""
from .convnet import ConvNet, convnet
from .lenet import LeNet5, lenet5
from .registry import MODELS, get_model, input_size

__all__ = ["MODELS", "ConvNet", "LeNet5", "convnet", "get_model", "input_size", "lenet5"]
