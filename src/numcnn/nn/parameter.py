"""``Parameter``: a tensor that a :class:`~numcnn.nn.Module` registers as learnable."""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from ..validation import check_bool, check_device, check_float_dtype

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A floating-point tensor that requires a gradient and that modules register on assignment.

    Parameters
    ----------
    data : ndarray or Tensor, optional
        The values; the array is shared, not copied, and its dtype (float32 or float64) is kept.
        ``None`` gives an empty float32 parameter.
    requires_grad : bool, default True

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn.nn import Parameter
    >>> w = Parameter(np.zeros((2, 3), dtype=np.float32))
    >>> w.requires_grad, w.dtype, w.shape
    (True, dtype('float32'), (2, 3))
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        arr = data.data if isinstance(data, Tensor) else np.asarray(data)
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(
                f"Parameter: data must have a floating dtype (float32 or float64), got {arr.dtype}"
            )
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def add_weight_and_bias(module, weight_shape: tuple, bias_size: int, bias, device, dtype,
                        op: str) -> None:
    """Register ``module.weight`` (uninitialized, ``weight_shape``) and ``module.bias``
    (``bias_size``, or None when ``bias`` is False), after checking ``bias``, ``device`` and
    ``dtype`` as PyTorch's layers do; the layer's ``reset_parameters`` fills them."""
    check_bool(bias, "bias", op)
    check_device(device, op)
    dt = check_float_dtype(dtype, op)
    module.weight = Parameter(np.empty(weight_shape, dtype=dt))
    if bias:
        module.bias = Parameter(np.empty(bias_size, dtype=dt))
    else:
        module.register_parameter("bias", None)
