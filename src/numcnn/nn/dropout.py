"""``Dropout``: inverted dropout in training mode, the identity in evaluation mode."""
from __future__ import annotations

from .. import functional as F
from ..validation import check_bool, check_probability
from .module import Module

__all__ = ["Dropout", "Dropout2d"]


class Dropout(Module):
    """Zero each element with probability ``p`` and scale the rest by ``1/(1 − p)`` while
    training; pass the input through unchanged after ``eval()``.

    The mask is drawn from numcnn's global generator (:func:`numcnn.random.get_rng`), so
    ``numcnn.manual_seed`` makes it reproducible.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> from numcnn import nn
    >>> drop = nn.Dropout(p=0.5)
    >>> _ = nc.manual_seed(0)
    >>> y = drop(np.ones((2, 4)))
    >>> sorted(set(y.data.ravel().tolist())) == [0.0, 2.0]
    True
    >>> float(drop.eval()(np.ones((2, 4))).data.sum())
    8.0
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = check_probability(p, "p", "Dropout")
        self.inplace = check_bool(inplace, "inplace", "Dropout")

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def get_config(self) -> dict:
        # inplace changes nothing here; listed only when set, as in earlier files
        return {"p": self.p} | ({"inplace": True} if self.inplace else {})

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels of (N, C, H, W) input with probability ``p`` (one draw per sample
    and channel) and scale the rest by ``1/(1 − p)`` while training; the identity after
    ``eval()``. See :func:`numcnn.functional.dropout2d`.
    """

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)
