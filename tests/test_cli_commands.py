"""The ``numcnn`` subcommands: each in its own module of numcnn.cli, registered explicitly, so
that one that cannot be imported breaks the command instead of disappearing from it."""
from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import numcnn.cli
from numcnn.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["train", "eval", "predict", "plot", "explain", "bench", "export"]


def _subcommands(parser) -> dict:
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_subcommand_is_registered_in_order():
    assert [name for name, _ in COMMANDS] == NAMES
    assert list(_subcommands(build_parser())) == NAMES


def test_every_module_of_the_cli_package_with_a_parser_is_registered():
    """A new subcommand module that is not in COMMANDS would never be reachable."""
    registered = {add.__module__ for _, add in COMMANDS}
    modules = {f"numcnn.cli.{m.name}" for m in pkgutil.iter_modules(numcnn.cli.__path__)
               if m.name != "__main__"}  # importing that one runs the command
    with_parser = {name for name in modules
                   if hasattr(__import__(name, fromlist=["_"]), "add_parser")}
    assert with_parser == registered - {"numcnn.explain.command"}
    assert with_parser == {f"numcnn.cli.{n}" for n in NAMES if n != "explain"}


@pytest.mark.parametrize("name", ["train", "eval", "predict", "plot", "explain", "bench",
                                  "export"])
def test_each_subcommand_has_a_handler(name):
    args = build_parser().parse_args([name] + {
        "train": [], "eval": ["x.npz"], "predict": ["x.npz", "a.npy"], "plot": ["run"],
        "explain": ["lenet5"], "bench": [], "export": ["x.npz", "y.onnx"]}[name])
    assert callable(args.func)


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


_BREAK = """
import sys

class Broken:  # the module raises ImportError, as one whose own import fails would
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise ImportError(name + " is broken")

sys.meta_path.insert(0, Broken())
from numcnn.cli import main
main(["--help"])
"""


@pytest.mark.parametrize("module", ["numcnn.cli.plot", "numcnn.cli.export", "numcnn.cli.bench",
                                    "numcnn.explain.command"])
def test_a_subcommand_that_cannot_be_imported_breaks_the_command_loudly(module):
    proc = _run(_BREAK.format(module=module))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == f"ImportError: {module} is broken", proc.stderr
    assert "usage: numcnn" not in proc.stdout


def test_the_help_lists_every_subcommand():
    proc = _run('from numcnn.cli import main\nmain(["--help"])')
    assert proc.returncode == 0, proc.stderr
    assert all(f"    {name} " in proc.stdout for name in NAMES), proc.stdout


def test_python_m_numcnn_cli_runs_the_command():
    proc = subprocess.run([sys.executable, "-m", "numcnn.cli", "--version"], capture_output=True,
                          text=True, timeout=120, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert proc.returncode == 0 and proc.stdout.startswith("numcnn "), proc.stderr


def test_the_console_script_is_the_cli_main():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'numcnn = "numcnn.cli:main"' in text


def test_export_errors_go_through_the_one_error_line(tmp_path, capsys):
    assert numcnn.cli.main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "x.txt")]) == 1
    err = capsys.readouterr().err
    assert err == (f"numcnn: error: the output '{tmp_path / 'x.txt'}' must end in .onnx or "
                   f".safetensors\n")
