"""ONNX export and import: run numcnn models elsewhere, and CNNs from elsewhere in numcnn.

* :func:`export` traces a model (``Sequential`` containers and custom ``forward`` methods
  alike) and writes an ONNX graph with a dynamic batch axis ``"N"``;
* :func:`load` rebuilds an ONNX chain of CNN operators as a :class:`numcnn.nn.Sequential`.

The ``numcnn export`` command is :mod:`numcnn.cli.export`.

Both need the optional ``onnx`` package (``pip install 'numcnn[onnx]'``); it is imported only
when they run, so ``import numcnn.onnx`` works without it.

Examples
--------
>>> import numpy as np
>>> from numcnn import models
>>> import numcnn.onnx
>>> model = models.lenet5().eval()
>>> numcnn.onnx.export(model, (1, 32, 32), "lenet5.onnx")      # doctest: +SKIP
>>> again = numcnn.onnx.load("lenet5.onnx")                     # doctest: +SKIP
>>> x = np.zeros((2, 1, 32, 32), dtype=np.float32)
>>> np.allclose(again(x).data, model(x).data, atol=1e-5)       # doctest: +SKIP
True
"""
from __future__ import annotations

from .export import DEFAULT_OPSET, MIN_OPSET, SUPPORTED_LAYERS, OnnxExportError, export
from .load import SUPPORTED_OPS, OnnxImportError, load

__all__ = [
    "DEFAULT_OPSET", "MIN_OPSET", "SUPPORTED_LAYERS", "SUPPORTED_OPS", "OnnxExportError",
    "OnnxImportError", "export", "load",
]
