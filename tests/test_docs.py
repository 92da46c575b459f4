"""docs/math.md is executable and its links are live.

Every ``>>>`` example in the derivation runs (the worked examples print the code's own
numbers), every relative link points to an existing file, and every function or test named
in a link exists in the file it links to, so the specification cannot drift from the code.
"""
from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MATH = ROOT / "docs" / "math.md"
LINK = re.compile(r"\[`?([^\]`]+)`?\]\((\.\./[^)#\s]+)\)")


def test_math_md_examples_run():
    result = doctest.testfile(str(MATH), module_relative=False, verbose=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted >= 40
    assert result.failed == 0


def _links():
    return LINK.findall(MATH.read_text(encoding="utf-8"))


def test_math_md_links_point_to_existing_files():
    missing = sorted({path for _, path in _links() if not (MATH.parent / path).resolve().exists()})
    assert not missing


@pytest.mark.parametrize("name, path", sorted({link for link in _links()
                                                if link[1].endswith(".py")}))
def test_math_md_linked_functions_exist(name, path):
    source = (MATH.parent / path).resolve().read_text(encoding="utf-8")
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        assert re.search(rf"^\s*(def|class) {name}\b", source, re.MULTILINE), f"{name} not in {path}"


def test_math_md_code_links_name_a_function_or_the_whole_module():
    """A link into the code names the function or class it explains (checked above to be
    defined in the file), or is visibly a link to the whole module (its file name)."""
    vague = sorted((name, path) for name, path in _links() if path.endswith(".py")
                   and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
                   and not path.endswith("/" + name.lstrip("./")))
    assert not vague


def test_math_md_links_code_and_tests_for_every_section():
    links = _links()
    assert sum(path.startswith("../src/") for _, path in links) >= 30
    assert sum(path.startswith("../tests/") for _, path in links) >= 30
