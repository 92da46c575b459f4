"""numcnn: convolutional neural networks in pure NumPy, every backward pass derived by hand.

>>> import numpy as np, numcnn as nc
>>> x = nc.tensor(np.ones((2, 3)), requires_grad=True)
>>> (x * 2).sum().backward()
>>> x.grad
array([[2., 2., 2.],
       [2., 2., 2.]])
"""
# io also gives Module.save / Module.load their implementation (nn cannot import io)
from . import data, functional, io, models, nn, ops, optim, random
from ._version import __version__
from .autograd import Tensor, is_grad_enabled, no_grad, ones, tensor, zeros
from .explain import explain
from .functional import flatten
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .serialization import load, save
from .tensors import arange, cat, from_numpy, randn, stack

__all__ = [
    "GradcheckError",
    "Tensor",
    "__version__",
    "arange",
    "cat",
    "data",
    "explain",
    "flatten",
    "from_numpy",
    "functional",
    "gradcheck",
    "io",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "models",
    "nn",
    "no_grad",
    "ones",
    "ops",
    "optim",
    "randn",
    "random",
    "save",
    "stack",
    "tensor",
    "zeros",
]
