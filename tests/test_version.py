"""One version: ``numcnn._version`` (read by the parts that must not import the package
facade), re-exported as ``numcnn.__version__``, equal to the packaging metadata's."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import numcnn
from numcnn import _version, nn


def test_the_facade_re_exports_the_version_module():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    assert declared is not None
    assert numcnn.__version__ is _version.__version__
    assert _version.__version__ == declared.group(1)


def test_onnx_files_name_the_version():
    pytest.importorskip("onnx")
    from numcnn.onnx import export

    proto = export(nn.Sequential(nn.Linear(3, 2)), (3,))
    assert proto.producer_name == "numcnn" and proto.producer_version == numcnn.__version__
