"""Batch normalization layers: ``BatchNorm1d`` and ``BatchNorm2d`` (as in ``torch.nn``).

``y = (x − μ) / √(σ² + ε) · γ + β`` per channel (axis 1). While training, μ and σ² are the
batch statistics (biased variance) and the running estimates are updated in place:
``running = (1 − momentum) · running + momentum · batch`` (unbiased variance); ``momentum=None``
gives the cumulative average ``1 / num_batches_tracked``. In evaluation mode the running
estimates are used instead. The running statistics are buffers (``running_mean``,
``running_var``, ``num_batches_tracked``), saved in the state dict under PyTorch's names.
"""
from __future__ import annotations

from numbers import Real

import numpy as np

from .. import functional as F
from ..validation import check_bool, check_device, check_float_dtype, check_int
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    _ranks: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=np.float32, *, bias=True):
        super().__init__()
        op = type(self).__name__
        self.num_features = check_int(num_features, "num_features", op)
        if not isinstance(eps, Real) or isinstance(eps, bool) or eps <= 0:
            raise ValueError(f"{op}: eps must be a positive number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, Real) or isinstance(momentum, bool)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{op}: momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps, self.momentum = eps, momentum
        self.affine = check_bool(affine, "affine", op)
        check_bool(bias, "bias", op)
        self.track_running_stats = check_bool(track_running_stats, "track_running_stats", op)
        check_device(device, op)
        dt = check_float_dtype(dtype, op)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dt))
            if bias:
                self.bias = Parameter(np.zeros(self.num_features, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype=dt))
            self.register_buffer("running_var", np.ones(self.num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """Running statistics reset; γ = 1 and β = 0."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input(self, input) -> None:
        shape = np.shape(input.data if hasattr(input, "data") else input)
        op = type(self).__name__
        if len(shape) not in self._ranks:
            raise ValueError(f"{op}: expected {self._layout} input, got shape {tuple(shape)}")
        if shape[1] != self.num_features:
            raise ValueError(f"{op}: input has {shape[1]} channels (shape {tuple(shape)}) but "
                             f"num_features={self.num_features}")

    def forward(self, input):
        self._check_input(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        keep_stats = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if keep_stats else None,
                            self.running_var if keep_stats else None, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)

    def get_config(self) -> dict:
        # without affine there is no bias to describe; True keeps the earlier files' value
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "bias": not self.affine or self.bias is not None}

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, " \
               f"affine={self.affine}, bias={self.bias is not None}, " \
               f"track_running_stats={self.track_running_stats}"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) input over N, H and W, per channel C.

    Parameters
    ----------
    num_features : int, the number of channels C
    eps : float, default 1e-5, added to the variance
    momentum : float or None, default 0.1, the running-average factor (None: cumulative)
    affine : bool, default True, learn γ (``weight``) and β (``bias``)
    bias : bool, default True (keyword-only), learn β when ``affine``
    track_running_stats : bool, default True; when False, batch statistics are used in
        evaluation mode too
    device : None or ``'cpu'``
    dtype : float32 (default) or float64

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> bn = nn.BatchNorm2d(6)
    >>> bn
    BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, (8, 6, 4, 4)).astype(np.float32)
    >>> y = bn(x)
    >>> bool(abs(y.data.mean()) < 1e-5), int(bn.num_batches_tracked)
    (True, 1)
    >>> list(bn.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """

    _ranks = (4,)
    _layout = "4-D (N, C, H, W)"


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) input over N (and L), per feature C.

    Same parameters as :class:`BatchNorm2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> bn = nn.BatchNorm1d(3)
    >>> bn(np.arange(12.0, dtype=np.float32).reshape(4, 3)).shape
    (4, 3)
    >>> bn.running_mean.round(4)
    array([0.45, 0.55, 0.65], dtype=float32)
    """

    _ranks = (2, 3)
    _layout = "2-D (N, C) or 3-D (N, C, L)"
