"""``Upsample``: resize the spatial axes by nearest or (bi)linear interpolation (``torch.nn``)."""
from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    """Resize to ``size`` or by ``scale_factor`` with :func:`numcnn.functional.interpolate`.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> nn.Upsample(scale_factor=2, mode="nearest")(np.ones((1, 3, 4, 4))).shape
    (1, 3, 8, 8)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) \
            and not isinstance(scale_factor, bool) else scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def get_config(self) -> dict:
        # recompute_scale_factor is listed only when set: other layers are described as before
        config = {"size": self.size, "scale_factor": self.scale_factor, "mode": self.mode,
                  "align_corners": self.align_corners}
        if self.recompute_scale_factor is not None:
            config["recompute_scale_factor"] = self.recompute_scale_factor
        return config

    def extra_repr(self) -> str:
        what = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None \
            else f"size={self.size!r}"
        return f"{what}, mode={self.mode!r}"
