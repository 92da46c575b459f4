"""numcnn: convolutional neural networks in pure NumPy, every backward pass derived by hand.

>>> import numpy as np, numcnn as nc
>>> x = nc.tensor(np.ones((2, 3)), requires_grad=True)
>>> (x * 2).sum().backward()
>>> x.grad
array([[2., 2., 2.],
       [2., 2., 2.]])
"""
from . import data, functional, io, models, nn, ops, optim, random
from .autograd import Tensor, is_grad_enabled, no_grad, ones, tensor, zeros
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .explain import explain  # noqa: E402  (the function shadows the subpackage attribute)

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "zeros", "ones", "no_grad", "is_grad_enabled", "gradcheck",
    "GradcheckError", "manual_seed", "functional", "ops", "random", "nn", "optim", "data",
    "models", "explain", "io", "__version__",
]
