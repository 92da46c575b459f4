"""What ``import numcnn`` loads, and who imports what in the application layer.

``import numcnn`` is the library: it must not load the command line (argparse), network code
(urllib.request) or ctypes. Each check runs in a fresh interpreter, where nothing else has
imported those modules yet.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "numcnn"

# NumPy itself imports ctypes (numpy._core._internal): the fresh interpreter imports NumPy
# first, drops its ctypes from sys.modules, and so sees any ctypes import numcnn adds.
_PROBE = """
import json, sys
import numpy
for name in [m for m in sys.modules if m == "ctypes" or m.startswith("ctypes.")]:
    del sys.modules[name]
import numcnn
exec(sys.argv[1])
print(json.dumps({name: name in sys.modules for name in sys.argv[2:]}))
"""


def _loaded_by_import_numcnn(*modules: str, then: str = "") -> dict[str, bool]:
    """Which of ``modules`` are loaded after ``import numcnn`` (and the code ``then``)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-c", _PROBE, then, *modules], env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def loaded() -> dict[str, bool]:
    return _loaded_by_import_numcnn("argparse", "urllib.request", "ctypes", "numcnn.cli",
                                    "http.client", "numcnn.distributed")


def test_the_probe_sees_ctypes_and_argparse_imported_after_numpy():
    """The probe can fail: what is imported after NumPy shows up."""
    assert _loaded_by_import_numcnn("ctypes", "argparse", "urllib.request",
                                    then="import ctypes.util, numcnn.cli, urllib.request") == {
        "ctypes": True, "argparse": True, "urllib.request": True}


@pytest.mark.parametrize("module", ["urllib.request", "http.client", "ctypes", "numcnn.cli",
                                    "numcnn.distributed"])
def test_import_numcnn_loads_no_network_code_ctypes_or_command_line(loaded, module):
    assert not loaded[module], f"import numcnn loads {module}"


def test_import_numcnn_loads_no_argparse(loaded):
    assert not loaded["argparse"], "import numcnn loads argparse"


# --- imports between the application modules, read from the source ----------------------------

def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(absolute module, imported names)`` of every import in a module, top level or not."""
    package = list(path.relative_to(PACKAGE.parent).parts[:-1])  # e.g. ["numcnn", "cli"]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((module, [alias.name for alias in node.names]))
    return found


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_the_import_reader_resolves_relative_imports():
    tree = _imports(PACKAGE / "cli" / "__init__.py")
    assert ("numcnn.errors", ["REPORTED", "UserError", "report"]) in tree
    assert ("numcnn.cli", ["bench", "export", "plot", "predict", "train"]) in tree
    assert ("numcnn.validation", ["positive_int"]) in _imports(PACKAGE / "explain" / "command.py")


def test_no_module_imports_private_names_of_the_cli():
    offenders = [f"{path.relative_to(PACKAGE)}: {module}.{name}"
                 for path in _sources() for module, names in _imports(path)
                 if module == "numcnn.cli" or module.startswith("numcnn.cli.")
                 for name in names if name.startswith("_")]
    assert offenders == []


def test_only_the_entry_points_import_the_cli():
    """The command line sits on top: only it and ``python -m numcnn`` import it."""
    users = {str(path.relative_to(PACKAGE)) for path in _sources()
             if not path.is_relative_to(PACKAGE / "cli")
             for module, names in _imports(path)
             if module.startswith("numcnn.cli") or (module == "numcnn" and "cli" in names)}
    assert users == {"__main__.py"}


def test_distributed_imports_neither_train_nor_the_cli():
    """distributed supplies train's synchronisation hook and sits below it (train builds a
    DataParallel when asked for several ranks); it needs nothing of train (or the CLI)."""
    modules = {module for module, _ in _imports(PACKAGE / "distributed.py")}
    assert not {m for m in modules if m.startswith(("numcnn.train", "numcnn.cli"))}
    assert "numcnn.errors" in modules


def test_the_errors_and_validation_modules_import_nothing_above_the_kernels():
    for name in ("errors.py", "validation.py"):
        numcnn_imports = {m for m, _ in _imports(PACKAGE / name) if m.startswith("numcnn")}
        assert numcnn_imports <= {"numcnn.ops.shapes"}, (name, numcnn_imports)
