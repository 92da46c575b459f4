"""The benchmark's two entries: ``python bench/run.py`` (and ``make bench``) in a source
checkout, and ``numcnn bench``, which finds that checkout's harness and passes its arguments on;
an installation without the harness says where to run it."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import bench
import pytest
from bench import command

import numcnn.cli
from numcnn.cli import bench as bench_entry
from numcnn.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
FLAGS = sorted({flag for action in command.build_parser()._actions
                for flag in action.option_strings})


def test_the_harness_is_the_checkouts_and_numcnn_finds_it():
    assert Path(bench.__file__).resolve().parent == ROOT / "bench"
    assert bench_entry.checkout_root(bench_entry.PACKAGE_DIR) == ROOT


def _numcnn_imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of each import of numcnn in ``path``, top level or not."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, [alias.name for alias in node.names]))
    return [(module, names) for module, names in found if module.split(".")[0] == "numcnn"]


def test_the_harness_uses_numcnns_public_api_only():
    """No private module or name of numcnn, and nothing of its command line."""
    imports = {path.name: _numcnn_imports(path) for path in sorted((ROOT / "bench").glob("*.py"))}
    assert ("numcnn", []) in imports["numcnn_cases.py"]  # the reader sees them
    for name, found in imports.items():
        for module, names in found:
            parts = module.split(".") + names
            assert not [p for p in parts if p.startswith("_")], (name, module, names)
            assert parts[:2] != ["numcnn", "cli"] and "cli" not in names, (name, module)


def test_numcnn_bench_passes_every_argument_on_to_the_harness(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(command, "run", lambda args: seen.append(vars(args)) or 0)
    argv = ["--quick", "--repeat", "2", "--rounds", "1", "--no-torch", "--no-memory",
            "--memory-budget", "4", "--no-epoch", "--json", str(tmp_path / "b.json")]
    assert command.main(argv) == 0
    assert numcnn.cli.main(["bench", *argv]) == 0
    assert seen[0] == seen[1]
    assert seen[0]["repeat"] == 2 and seen[0]["memory_budget"] == 4.0 and seen[0]["quick"]


def test_numcnn_bench_flag_errors_are_the_harness_s_under_its_name(capsys):
    with pytest.raises(SystemExit) as exit_:
        numcnn.cli.main(["bench", "--repeat", "2", "--rounds", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "numcnn bench: error: argument --rounds: expected a positive integer, got 0")


def test_an_installation_without_the_harness_says_where_to_run_it(monkeypatch, tmp_path, capsys):
    wheel = tmp_path / "site-packages" / "numcnn"
    wheel.mkdir(parents=True)
    monkeypatch.setattr(bench_entry, "PACKAGE_DIR", wheel)
    assert numcnn.cli.main(["bench", "--quick"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"numcnn: error: numcnn bench runs the benchmark harness of a source checkout (its "
        f"bench/ folder), and the numcnn imported here ({wheel}) has none beside it")
    assert "`python bench/run.py` or `make bench`" in err[0]


def test_a_src_folder_without_the_harness_is_not_a_checkout(tmp_path):
    (tmp_path / "src" / "numcnn").mkdir(parents=True)
    with pytest.raises(UserError, match="has none beside it"):
        bench_entry.checkout_root(tmp_path / "src" / "numcnn")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "command.py").write_text("")
    assert bench_entry.checkout_root(tmp_path / "src" / "numcnn") == tmp_path


def test_another_module_named_bench_is_not_taken_for_the_harness(tmp_path):
    """This process imported the harness of ROOT: a checkout elsewhere cannot get its own."""
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "command.py").write_text("")
    assert bench_entry.load_harness(ROOT) is command
    with pytest.raises(UserError, match=re.escape(f"a module named bench from {ROOT / 'bench'} "
                                                  f"stands in for the benchmark harness of "
                                                  f"{tmp_path / 'bench'}")):
        bench_entry.load_harness(tmp_path)


def _python(*args: str, cwd: Path, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, (ROOT / "src", *path))))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("entry", [["bench/run.py"], ["-m", "numcnn", "bench"]],
                         ids=["bench/run.py", "numcnn bench"])
def test_help_of_each_entry_lists_every_flag(tmp_path, entry):
    """Run as a user runs them, from another folder (bench/run.py by its path)."""
    if entry[0] == "bench/run.py":
        entry = [str(ROOT / entry[0])]
    proc = _python(*entry, "--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(FLAGS) > 10
    for flag in FLAGS:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", proc.stdout), flag


def test_bench_run_py_imports_the_harness_as_a_package_only(tmp_path):
    """Run as a file, bench/run.py takes bench/ itself off sys.path, where Python put it: its
    modules cannot stand in for others (bench/timing.py for a top-level ``timing``); and its
    own package comes first, before any other ``bench`` on the path."""
    other = tmp_path / "other" / "bench"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("raise ImportError('another bench')\n")
    code = ("import importlib.util, os, runpy, sys\n"
            "script = sys.argv[1]\n"
            "sys.argv = [script, '--help']\n"
            "sys.path.insert(0, os.path.dirname(script))  # as `python bench/run.py` does\n"
            "try:\n    runpy.run_path(script, run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(importlib.util.find_spec('timing') is None, 'bench.command' in sys.modules)")
    proc = _python("-c", code, str(ROOT / "bench" / "run.py"), cwd=tmp_path,
                   path=(other.parent,))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "True True"
