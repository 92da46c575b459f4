"""Fixtures of the interoperability tests: real MNIST test images and the PyTorch twins of
numcnn's models (same attribute names, so state dicts map one to one).

PyTorch, safetensors, onnx and onnxruntime are test-only oracles: each test module skips when
the one it needs is missing.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from numcnn import data, nn, no_grad, train

#: Outputs of the same weights in two libraries agree to float32 round-off.
ATOL = 1e-5


@pytest.fixture(scope="session")
def mnist_batch():
    """``mnist_batch(model_name)``: the first 64 MNIST test images, preprocessed for that model
    exactly as ``numcnn train`` does (scaled, padded to the model's size, normalized)."""
    cache = {}

    def get(model_name: str = "lenet5") -> np.ndarray:
        if model_name not in cache:
            base, _, normalize = train.preprocessing(model_name, "mnist", False)
            images, _ = data.MNIST(train=False, transform=base, limit=64, download=False)[:64]
            cache[model_name] = data.apply_batch(normalize, images).astype(np.float32)
        return cache[model_name].copy()

    return get


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Give every numcnn BatchNorm non-trivial affine parameters and running statistics."""
    rng = np.random.default_rng(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = module.num_features
            module.weight.data[...] = rng.uniform(0.5, 1.5, c)
            module.bias.data[...] = rng.normal(0, 0.2, c)
            module.running_mean[...] = rng.normal(0, 0.3, c)
            module.running_var[...] = rng.uniform(0.5, 2.0, c)
            module.num_batches_tracked[...] = 7


@pytest.fixture(scope="session")
def torch_models(torch):
    """Factories of the PyTorch twins: ``lenet5(activation, pool)`` and ``convnet(**config)``."""
    tnn = torch.nn

    class LeNet5(tnn.Module):
        def __init__(self, num_classes=10, activation="tanh", in_channels=1, pool="avg"):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 6, kernel_size=5)
            self.conv2 = tnn.Conv2d(6, 16, kernel_size=5)
            self.fc1 = tnn.Linear(16 * 5 * 5, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, num_classes)
            self.act = tnn.Tanh() if activation == "tanh" else tnn.ReLU()
            self.pool = tnn.AvgPool2d(2) if pool == "avg" else tnn.MaxPool2d(2)

        def forward(self, x):
            x = self.pool(self.act(self.conv1(x)))
            x = self.pool(self.act(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = self.act(self.fc1(x))
            x = self.act(self.fc2(x))
            return self.fc3(x)

    def block(c_in, c_out, dropout):
        return [tnn.Conv2d(c_in, c_out, 3, padding=1, bias=False), tnn.BatchNorm2d(c_out),
                tnn.ReLU(), tnn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                tnn.BatchNorm2d(c_out), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(dropout)]

    class ConvNet(tnn.Module):
        def __init__(self, num_classes=10, in_channels=1, dropout=0.25, width=32, hidden=128):
            super().__init__()
            w = width
            self.features = tnn.Sequential(*block(in_channels, w, dropout),
                                           *block(w, 2 * w, dropout))
            self.classifier = tnn.Sequential(
                tnn.Flatten(), tnn.Linear(2 * w * 7 * 7, hidden, bias=False),
                tnn.BatchNorm1d(hidden), tnn.ReLU(), tnn.Dropout(dropout),
                tnn.Linear(hidden, num_classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    class Factories:
        lenet5 = LeNet5
        convnet = ConvNet

    return Factories


def torch_output(torch, model, x: np.ndarray) -> np.ndarray:
    """``model(x)`` in evaluation mode, as a NumPy array."""
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def numcnn_output(model, x: np.ndarray) -> np.ndarray:
    """``model(x)`` in evaluation mode, as a NumPy array."""
    model.eval()
    with no_grad():
        return model(x).data


@pytest.fixture(scope="session")
def interop():
    """The helpers above, for the test modules (``interop.torch_output(...)``, ...)."""
    return SimpleNamespace(ATOL=ATOL, randomize_batch_norm=randomize_batch_norm,
                           torch_output=torch_output, numcnn_output=numcnn_output)
