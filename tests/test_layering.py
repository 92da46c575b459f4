"""The package's import layering: no import cycle between modules, no import against the layer
table, and a light ``import numcnn``.

The import graph is read from the source with ``ast`` (imports inside functions included, as they
run as soon as the function does): one node per module, package ``__init__`` files included.
``LAYERS`` below is the one definition of the layering (README, "Architecture" shows the same
table): a module may import modules of its own part freely (cycles aside) and any part on a
LOWER level; an import of a part on the same or a higher level is upward. ``KNOWN`` lists, each
with its reason, the imports that break this today; they are the to-do list, and a test fails
when one of them is gone so that the list shrinks with the code.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "numcnn"

#: Parts of the package (a top-level module or subpackage of numcnn; "numcnn" is the package's
#: own ``__init__``) by level, lowest first. Parts on one level do not import each other.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernels, errors and the version, NumPy only", ("ops", "errors", "_version")),
    ("argument checks and Tensor's in-place methods", ("validation", "inplace")),
    ("foundations", ("autograd", "random", "optim", "metrics", "atomic")),
    ("op helpers and data", ("reference", "padding", "gradcheck", "data", "_functional_ext")),
    ("functions on tensors", ("functional", "tensors")),
    ("layers", ("nn",)),
    ("models", ("models",)),
    ("persistence and training settings", ("io", "checkpoint", "trainconfig")),
    ("saving, run folders and MPI ranks", ("serialization", "rundir", "distributed")),
    ("tools", ("train", "explain")),
    ("tools built on train or io", ("onnx", "plots")),
    ("command line", ("cli",)),
    ("the package facade", (PACKAGE, "__main__")),
)
LEVEL = {part: level for level, (_, parts) in enumerate(LAYERS) for part in parts}

#: (importer, imported) -> why it is there. Each is upward or closes a cycle; remove the entry
#: together with the import.
KNOWN: dict[tuple[str, str], str] = {
}


# --- the import graph ---------------------------------------------------------------------------

def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``root/package``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known_modules, package: str) -> set[str]:
    """The modules of ``package`` that module ``name`` imports, at any depth of its code.

    ``from X import y`` counts as importing ``X.y`` when that is a module, else ``X``;
    ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name count too.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str, names=()) -> None:
        if target.split(".")[0] != package:
            return
        subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known_modules]
        found.update(subs)
        if not names or len(subs) < len(names):  # ``import target`` or names defined in it
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            add(target, [alias.name for alias in node.names])
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr == "import_module"))):
            add(node.args[0].value)
    found.discard(name)
    return found


def graph(root: Path = SRC, package: str = PACKAGE) -> dict[str, set[str]]:
    known_modules = modules(root, package)
    return {name: imports(name, path, known_modules, package)
            for name, path in known_modules.items()}


def part(module: str) -> str:
    """The layer-table entry a module belongs to: ``numcnn.nn.conv`` -> ``nn``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else pieces[0]


def upward(edges: dict[str, set[str]], level: dict[str, int]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in edges.items() for b in targets
            if part(a) != part(b) and level[part(b)] >= level[part(a)]}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def without(edges: dict[str, set[str]], removed) -> dict[str, set[str]]:
    return {a: {b for b in targets if (a, b) not in removed} for a, targets in edges.items()}


@pytest.fixture(scope="module")
def edges():
    return graph()


# --- the checks ---------------------------------------------------------------------------------

def test_every_part_has_a_layer(edges):
    missing = sorted({part(m) for m in edges} - set(LEVEL))
    assert not missing, f"add {missing} to LAYERS in tests/test_layering.py (and the README)"
    assert len(LEVEL) == sum(len(parts) for _, parts in LAYERS), "a part is listed twice"


def test_no_upward_import(edges):
    new = sorted(upward(edges, LEVEL) - set(KNOWN))
    assert not new, "imports against the layering (README, Architecture): " + "; ".join(
        f"{a} ({part(a)}, level {LEVEL[part(a)]}) imports {b} ({part(b)}, level {LEVEL[part(b)]})"
        for a, b in new)


def test_no_import_cycle(edges):
    found = cycles(without(edges, KNOWN))
    assert not found, f"import cycles: {found}"


def test_known_exceptions_are_still_needed(edges):
    """Each entry of KNOWN (none today) is an import that exists and is a violation on its own
    (upward, or closing a cycle); once the code no longer needs it, delete the entry."""
    for a, b in sorted(KNOWN):
        assert b in edges.get(a, set()), f"{a} no longer imports {b}: delete it from KNOWN"
        others = {e for e in KNOWN if e != (a, b)}
        closes_cycle = any(a in component and b in component
                           for component in cycles(without(edges, others)))
        assert (a, b) in upward(edges, LEVEL) or closes_cycle, \
            f"{a} -> {b} is neither upward nor part of a cycle: delete it from KNOWN"


def test_the_core_imports_no_application_part(edges):
    """Spelled out for the lowest levels: what ops, autograd and functional may import."""
    allowed = {"ops": {"ops"},
               "autograd": {"autograd", "inplace"},
               "functional": {"functional", "ops", "autograd", "padding", "random",
                              "_functional_ext", "validation", "errors"}}
    for module, targets in edges.items():
        if part(module) in allowed:
            assert {part(t) for t in targets} <= allowed[part(module)], (module, targets)


# --- the checker itself catches what it should ---------------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checker_finds_cycles_upward_and_function_level_imports(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from . import low\n",
        "pkg/low.py": "def f():\n    from .high import g\n    return g\n",   # inside a function
        "pkg/high.py": "import pkg.low\nfrom pkg import mid\n",
        "pkg/mid.py": "import importlib\nimportlib.import_module('pkg.high')\n",
        "pkg/sub/__init__.py": "from ..low import f\nfrom .leaf import x\n",
        "pkg/sub/leaf.py": "from .. import sub\nx = 1\n",
    })
    edges = graph(tmp_path, "pkg")
    assert edges["pkg.low"] == {"pkg.high"}
    assert edges["pkg.high"] == {"pkg.low", "pkg.mid"}
    assert edges["pkg.mid"] == {"pkg.high"}
    assert edges["pkg.sub"] == {"pkg.low", "pkg.sub.leaf"}
    assert edges["pkg.sub.leaf"] == {"pkg.sub"}
    assert sorted(cycles(edges)) == [["pkg.high", "pkg.low", "pkg.mid"], ["pkg.sub", "pkg.sub.leaf"]]
    level = {"pkg": 3, "low": 0, "mid": 1, "high": 2, "sub": 1}
    assert upward(edges, level) == {("pkg.low", "pkg.high"), ("pkg.mid", "pkg.high")}
    assert cycles(without(edges, {("pkg.low", "pkg.high"), ("pkg.sub.leaf", "pkg.sub")})) == [
        ["pkg.high", "pkg.mid"]]
    assert cycles(without(edges, {("pkg.low", "pkg.high"), ("pkg.mid", "pkg.high"),
                                  ("pkg.sub.leaf", "pkg.sub")})) == []


# --- a light ``import numcnn`` ------------------------------------------------------------------

_LOADED = ("import json, sys; import numpy; base = set(sys.modules); import numcnn; "
           "print(json.dumps(sorted(set(sys.modules) - base)))")


@pytest.fixture(scope="module")
def added_by_numcnn():
    """The modules ``import numcnn`` loads in a fresh interpreter beyond those NumPy loads."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run([sys.executable, "-c", _LOADED], capture_output=True, text=True,
                         check=True, env=env)
    return set(json.loads(out.stdout))


KNOWN_HEAVY: dict[str, str] = {}
# ctypes is not listed: NumPy itself loads it, so numcnn cannot be told apart there.
HEAVY = ["argparse", "urllib.request", "torch", "onnx", "onnxruntime", "safetensors", "mpi4py",
         "matplotlib", "tqdm", "PIL"]


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_HEAVY[name]))
    if name in KNOWN_HEAVY else name for name in HEAVY])
def test_import_numcnn_does_not_load(added_by_numcnn, name):
    assert "numcnn.nn" in added_by_numcnn  # the probe did import numcnn
    assert name not in added_by_numcnn, f"import numcnn loads {name}"
