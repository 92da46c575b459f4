"""Loss layers: ``CrossEntropyLoss`` and ``MSELoss`` (as in ``torch.nn``).

Their options are keyword-only: numcnn does not implement PyTorch's leading ``weight``,
``size_average``, ``ignore_index`` and ``reduce`` arguments, so a positional argument written
for PyTorch would otherwise land on the wrong option silently.
"""
from __future__ import annotations

from numbers import Real

from .. import functional as F
from ..validation import check_reduction
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss"]


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits (N, C) against integer class targets (N,).

    ``loss_n = −(1 − ε) · log p[n, t_n] − (ε / C) · Σ_c log p[n, c]``, ``log p`` the
    log-softmax of the logits and ε ``label_smoothing``; reduced by ``reduction``
    (``'mean'``, ``'sum'`` or ``'none'``).

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> loss = nn.CrossEntropyLoss()(np.zeros((4, 10)), np.array([0, 1, 2, 3]))
    >>> round(float(loss.item()), 4)  # log(10)
    2.3026
    """

    def __init__(self, *, reduction="mean", label_smoothing=0.0):
        super().__init__()
        self.reduction = check_reduction(reduction, "CrossEntropyLoss")
        if not isinstance(label_smoothing, Real) or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError("CrossEntropyLoss: label_smoothing must be in [0, 1], "
                             f"got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return F.cross_entropy(input, target, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)

    def get_config(self) -> dict:
        return {"reduction": self.reduction, "label_smoothing": self.label_smoothing}


class MSELoss(Module):
    """Mean squared error ``(input − target)²``, reduced by ``reduction``.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> float(nn.MSELoss()(np.array([1.0, 3.0]), np.array([0.0, 0.0])).item())
    5.0
    """

    def __init__(self, *, reduction="mean"):
        super().__init__()
        self.reduction = check_reduction(reduction, "MSELoss")

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)

    def get_config(self) -> dict:
        return {"reduction": self.reduction}
