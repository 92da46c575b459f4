"""``numcnn explain --html`` and ``--values``: the page's data against numcnn's kernels and PyTorch,
the seed's two examples, the shipped pages, and the explain command's reliability and layering."""
from __future__ import annotations

import argparse
import ast
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numcnn import ops
from numcnn.explain import ExplainError, explain_op, explain_page, explain_values
from numcnn.explain.command import add_explain_parser, run_explain
from numcnn.explain.examples import PAGES, page_text, seed_inputs
from numcnn.explain.html import render_page
from numcnn.explain.plan import unread_count

torch = pytest.importorskip("torch")
TF = torch.nn.functional
ROOT = Path(__file__).resolve().parents[1]
EXPLAIN = ROOT / "src" / "numcnn" / "explain"


def cli(*argv) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="numcnn")
    add_explain_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_explain(parser.parse_args(["explain", *argv]), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def shown(data: dict, name: str) -> np.ndarray:
    """An array as the page holds it: its grids stacked (leading axes flattened)."""
    return np.array([g["rows"] for g in data["arrays"][name]["grids"]], dtype=float)


def stage(data: dict, sid: str) -> dict:
    return next(s for s in data["stages"] if s["id"] == sid)


def product_sum(terms: str) -> float:
    """Evaluate the ``a·b + c·(−d) + ... + b[q] (v) = r`` text of a cell (left of '=')."""
    left = terms.split(" = ")[0].replace("−", "-")
    total = 0.0
    for term in left.split(" + "):
        term = re.sub(r"^b\[\d+\] \((.*)\)$", r"\1", term.strip())
        factors = [float(f.strip("()")) for f in term.split("·")]
        total += float(np.prod(factors))
    return total


def result_of(terms: str) -> float:
    return float(terms.split(" = ")[1].split()[0].replace("−", "-"))


CONVS = [
    ("conv2d(1, 1, 3, stride=2)", (1, 5, 5)),
    ("conv2d(1, 1, 3, stride=2)", (1, 6, 6)),
    ("conv2d(2, 3, 3, stride=2, padding=1)", (2, 6, 5)),
    ("conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)", (4, 7, 6)),
    ("conv2d(1, 2, 2, stride=3, padding=2, bias=False)", (1, 5, 7)),
    ("conv2d(1, 2, 4, padding='same')", (1, 5, 6)),              # asymmetric padding 1/2
]


def torch_conv(spec_shape, inputs):
    """Y, gW, gX, gb of the same layer by PyTorch (the oracle), float64."""
    from numcnn.explain import one_layer

    plan, _ = one_layer(spec_shape[0], spec_shape[1])
    layer = plan.layer
    x = torch.tensor(inputs["x"], requires_grad=True)
    w = torch.tensor(inputs["w"], requires_grad=True)
    b = torch.tensor(inputs["b"], requires_grad=True) if "b" in inputs else None
    y = TF.conv2d(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups)
    y.backward(torch.tensor(inputs["gy"]))
    return y.detach().numpy(), w.grad.numpy(), x.grad.numpy(), None if b is None else b.grad


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("spec, shape", CONVS)
def test_conv_page_numbers_are_numcnns_and_torchs(spec, shape):
    data = explain_page(spec, shape)
    from numcnn.explain import one_layer
    from numcnn.explain.values import sample_inputs

    plan, _ = one_layer(spec, shape)
    inputs = sample_inputs(plan)
    y, gw, gx, gb = torch_conv((spec, shape), inputs)
    if gb is not None:                                  # gb, listed with the gW step
        assert stage(data, "gW")["lines"][-1] == \
            "gb[q] = Σ gY[q] = " + ", ".join(str(int(v)) for v in gb.numpy())
    C_out, Cg, kh, kw = gw.shape
    np.testing.assert_allclose(shown(data, "Y"), y[0], atol=1e-9)
    np.testing.assert_allclose(shown(data, "gW"), gw.reshape(C_out * Cg, kh, kw), atol=1e-9)
    np.testing.assert_allclose(shown(data, "gX"), gx[0], atol=1e-9)
    # the seed's gX (inserted, flipped, correlated) equals the im2col/col2im gX, and gW both ways
    np.testing.assert_array_equal(shown(data, "gX_ins"), shown(data, "gX"))
    np.testing.assert_allclose(shown(data, "gW_rot"), shown(data, "gW"), atol=1e-9)
    # and the kernels' own inserted path agrees
    layer = plan.layer
    args = (layer.stride, layer.padding, layer.dilation, layer.groups)
    ins = ops.conv2d_input(inputs["x"].shape, inputs["w"], inputs["gy"], *args, method="inserted")
    np.testing.assert_allclose(shown(data, "gX_ins"), ins[0], atol=1e-9)


@pytest.mark.parametrize("spec, shape", CONVS)
def test_every_cell_shows_products_that_sum_to_the_kernels_value(spec, shape):
    data = explain_page(spec, shape)
    arrays = {name: shown(data, name) for name in data["arrays"]}
    for sid in ("forward", "gW", "correlate", "col2im"):
        cells = stage(data, sid)["cells"]
        assert cells
        for cell in cells:
            name, g, i, j = cell["target"]
            value = arrays[name][g, i, j]
            assert result_of(cell["terms"]) == pytest.approx(value, abs=1e-9)
            if "products are 0" not in cell["terms"] and "no window" not in cell["terms"]:
                assert product_sum(cell["terms"]) == pytest.approx(value, abs=1e-9)


def test_forward_cells_mark_each_window_and_its_weights():
    data = explain_page("conv2d(2, 2, 3, stride=2, padding=1, groups=2)", (2, 5, 5))
    cells = stage(data, "forward")["cells"]
    assert len(cells) == 2 * 3 * 3
    cell = next(c for c in cells if c["target"] == ["Y", 1, 2, 1])
    window = sorted((g, i, j) for g, i, j, _ in cell["mark"]["X_pad"])
    assert window == [(1, i, j) for i in range(4, 7) for j in range(2, 5)]
    assert {g for g, *_ in cell["mark"]["W"]} == {1}


def test_the_seeds_6x6_example_has_the_8x8_inserted_gradient():
    data = explain_page("conv2d(1, 1, 3, stride=2)", (1, 6, 6), inputs=seed_inputs(6))
    P = shown(data, "P")[0]
    assert P.shape == (8, 8)
    expected = np.zeros((8, 8))
    expected[2, 2], expected[2, 4], expected[4, 2], expected[4, 4] = 1, 2, 3, 4
    np.testing.assert_array_equal(P, expected)
    remainder = {(i, j) for _, i, j, cls in stage(data, "pad")["marks"]["P"] if cls == "r"}
    assert remainder == {(7, j) for j in range(8)} | {(i, 7) for i in range(8)}
    np.testing.assert_array_equal(shown(data, "Y")[0], [[18, 24], [54, 60]])   # math.md 9.2
    np.testing.assert_array_equal(shown(data, "gW")[0], [[96, 106, 116], [156, 166, 176],
                                                          [216, 226, 236]])
    gx = shown(data, "gX")[0]
    assert not gx[5].any() and not gx[:, 5].any()          # the row no window reads
    lines = "\n".join(stage(data, "pad")["lines"])
    assert "after k_eff−1−p+r = 3−1−0+1 = 3" in lines and "= 8 rows" in lines


def test_the_seeds_5x5_example_has_the_7x7_inserted_gradient():
    data = explain_page("conv2d(1, 1, 3, stride=2)", (1, 5, 5), inputs=seed_inputs(5))
    assert shown(data, "P").shape == (1, 7, 7)
    np.testing.assert_array_equal(shown(data, "Y")[0], [[15, 21], [45, 51]])   # math.md 9.1
    assert shown(data, "gX")[0, 2, 2] == 2
    assert not any(cls == "r" for *_, cls in stage(data, "pad")["marks"]["P"])


@pytest.mark.parametrize("spec", ["avgpool2d(3, stride=2, padding=1)",
                                  ("avgpool2d(3, stride=2, padding=1, count_include_pad=False, "
                                   "ceil_mode=True)"),
                                   "maxpool2d(3, stride=2, padding=1)",
                                   "maxpool2d(2, stride=2, dilation=2, ceil_mode=True)"])
def test_pool_page_numbers_are_torchs(spec):
    from numcnn.explain import one_layer
    from numcnn.explain.values import sample_inputs

    plan, _ = one_layer(spec, (2, 6, 5))
    inputs = sample_inputs(plan)
    data = explain_page(spec, (2, 6, 5))
    layer = plan.layer
    x = torch.tensor(inputs["x"], requires_grad=True)
    if "avg" in spec:
        y = TF.avg_pool2d(x, layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
                          layer.count_include_pad)
    else:
        y = TF.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                          layer.ceil_mode)
    y.backward(torch.tensor(inputs["gy"]))
    # the page keeps 6 decimals (averages such as 14/9 are not exact)
    np.testing.assert_allclose(shown(data, "Y"), y.detach().numpy()[0], atol=1e-6)
    np.testing.assert_allclose(shown(data, "gX"), x.grad.numpy()[0], atol=1e-6)
    if "max" in spec:                   # every gY is routed to the cell holding its window's max
        xs = inputs["x"][0]
        for cell in stage(data, "route")["cells"]:
            (c, i, j, _), = [m for m in cell["mark"]["X"] if m[3] == "a"]
            c2, oh, ow = cell["mark"]["gY"][0][:3]
            window = [xs[m[0], m[1], m[2]] for m in cell["mark"]["X"]]
            assert xs[c, i, j] == y.detach().numpy()[0, c2, oh, ow] == max(window)
            assert cell["target"] == ["gX", c, i, j]
    else:
        cells = stage(data, "forward")["cells"]
        assert all(result_of(c["terms"]) == pytest.approx(shown(data, "Y")[tuple(c["target"][1:])],
                                                         abs=1e-3) for c in cells)


def test_shipped_pages_are_up_to_date():
    """docs/pages/ holds exactly what this numcnn computes (python -m numcnn.explain.examples)."""
    folder = ROOT / "docs" / "pages"
    assert sorted(p.name for p in folder.glob("*.html")) == sorted(PAGES)
    for name in PAGES:
        assert (folder / name).read_text(encoding="utf-8") == page_text(name), (
            f"docs/pages/{name} is stale: run python -m numcnn.explain.examples docs/pages")


def test_shipped_pages_are_linked_from_the_docs():
    math_md = (ROOT / "docs" / "math.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("conv-5x5-k3-s2.html", "conv-6x6-k3-s2.html"):
        assert f"pages/{name}" in math_md and f"docs/pages/{name}" in readme


def test_page_is_self_contained():
    text = render_page(explain_page("conv2d(1, 1, 3, stride=2)", (1, 6, 6)))
    assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert "default-src 'none'" in text                    # the browser may fetch nothing
    payload = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', text,
                        re.DOTALL).group(1)
    data = json.loads(payload.replace("<\\/", "</"))
    assert data["arrays"]["P"]["shape"] == [1, 1, 8, 8]


def test_page_data_cannot_close_its_script_element():
    data = explain_page("conv2d(1, 1, 3)", (1, 4, 4), title="</script><script>alert(1)</script>")
    text = render_page(data)
    assert text.count("</script>") == 2 and "&lt;/script&gt;" in text


# --- the command line ------------------------------------------------------------------------

def test_cli_html_writes_the_page(tmp_path):
    page = tmp_path / "conv.html"
    code, out, err = cli("conv2d(1, 1, 3, stride=2)", "--input", "1x6x6", "--html", str(page))
    assert code == 0 and not err
    assert f"wrote {page}: 10 stages, 96 steps" in out
    assert "default-src 'none'" in page.read_text(encoding="utf-8")
    code, out, err = cli("maxpool2d", "H=5", "W=5", "k=3", "s=2", "p=1", "--html", str(page))
    assert code == 0 and '"kind":"maxpool2d"' in page.read_text(encoding="utf-8")


@pytest.mark.parametrize("argv, match", [
    (("lenet5", "--html", "x.html"), "--html explains one layer; lenet5 has"),
    (("conv2d(1, 1, 3)", "--input", "1x100x100", "--html", "x.html"), "for small samples"),
    (("linear(4, 2)", "--input", "4", "--values"), "--values shows the values of one layer"),
    (("conv2d(1, 1, 3)", "--input", "28x28"), "give C x H x W, e.g. 1x28x28"),
    (("conv2d(1, 1, 3)", "--input", "1x6x6", "--html", "/nonexistent/dir/x.html"), "x.html"),
])
def test_cli_html_and_values_refusals_are_one_line(argv, match):
    code, out, err = cli(*argv)
    assert code == 2 and not out
    assert err.startswith("numcnn: error: ") and err.count("\n") == 1 and match in err


def _printed_grids(text: str, name: str) -> np.ndarray:
    block = text.split(f"\n{name} (")[1].split("\n")[1:]
    rows = []
    for line in block:
        if re.match(r"^    \s*[-\d]", line):
            rows.append([float(v) for v in line.split()])
        elif not line.startswith("  ["):
            break
    return np.array(rows)


def test_values_print_the_kernels_arrays():
    code, out, _ = cli("conv2d", "H=6", "W=6", "k=3", "s=2", "--values")
    assert code == 0
    from numcnn.explain import one_layer
    from numcnn.explain.values import layer_values

    plan, _ = one_layer("conv2d(1, 1, 3, stride=2)", (1, 6, 6))
    _, arrays = layer_values(plan)
    for name in ("X_pad", "Y", "G", "P", "W_T", "gX", "gW"):
        np.testing.assert_array_equal(_printed_grids(out, name), arrays[name].reshape(
            -1, arrays[name].shape[-1]), err_msg=name)
    assert _printed_grids(out, "P").shape == (8, 8)
    text = explain_values("maxpool2d(3, stride=2, padding=1)", (1, 5, 5))
    assert "X_pad (1, 1, 7, 7)" in text and "-inf" in text and "argmax (1, 1, 3, 3)" in text


# --- reliability: sizes ----------------------------------------------------------------------

def _reference_unread(size, k, s, p, d, out):
    read = {s * o + d * u - p for o in range(out) for u in range(k)}
    return sum(1 for i in range(size) if i not in read)


@settings(max_examples=300)
@given(size=st.integers(1, 40), k=st.integers(1, 6), s=st.integers(1, 6), p=st.integers(0, 4),
       d=st.integers(1, 4), out=st.integers(1, 12))
def test_unread_count_is_the_brute_force_count(size, k, s, p, d, out):
    assert unread_count(size, k, s, p, d, out) == _reference_unread(size, k, s, p, d, out)


def test_huge_sizes_are_explained_arithmetically():
    text = explain_op("conv2d", N=1, H=10**9, W=10**9, k=3, s=2)
    assert "(1, 1, 499999999, 499999999)" in text
    assert explain_op("conv2d", H=10**9, W=10**9, k=3).plans[0].unread == (0, 0)


@pytest.mark.parametrize("argv, size", [
    (("conv2d(3, 8, 3)", "--input", "3x100000x100000", "--trace"), "18.6 TiB"),
    (("conv2d(100000, 100000, 3)",), "335 GiB"),
    (("conv2d", "C_in=100000", "C_out=100000", "H=5", "W=5", "k=3"), "671 GiB"),
    (("linear(1000000, 1000000)",), "3.64 TiB"),
    (("lenet5", "--input", "1x100000x100000"), "37.3 GiB"),
])
def test_sizes_that_cannot_be_allocated_are_one_line_before_allocating(argv, size):
    code, out, err = cli(*argv)
    assert code == 2 and not out and err.count("\n") == 1
    assert err.startswith("numcnn: error: ") and size in err and "at most 2 GiB" in err


def test_sizes_are_refused_through_the_numcnn_command():
    proc = subprocess.run([sys.executable, "-m", "numcnn", "explain", "conv2d(100000, 100000, 3)"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "335 GiB" in proc.stderr


# --- layering (the explain package) ----------------------------------------------------------

def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.append((node.module or "", [a.name for a in node.names], node.level))
    return found


def test_explain_imports_no_private_names_from_elsewhere():
    for path in EXPLAIN.glob("*.py"):
        for module, names, level in _imports(path):
            if level == 2 and module == "cli" or module.endswith("numcnn.cli"):
                pytest.fail(f"{path.name} imports the CLI module")
            if level == 1 and module == "walk":
                assert not [n for n in names if n.startswith("_")], path.name


def test_explain_package_does_not_import_its_command():
    init = EXPLAIN / "__init__.py"
    assert not [m for m, _, level in _imports(init) if level == 1 and m == "command"]
    code = ("import sys, numcnn.explain; "
            "print('argparse' in sys.modules, 'numcnn.explain.command' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.stdout.split() == ["False", "False"], proc.stderr


def test_explain_is_a_numcnn_subcommand():
    from numcnn.cli import build_parser

    args = build_parser().parse_args(["explain", "conv2d(1, 1, 3)", "--input", "1x5x5"])
    assert args.func is run_explain


def test_a_list_of_layers_is_refused_for_the_page():
    with pytest.raises(ExplainError, match="one layer"):
        explain_page("conv2d(1, 1, 3), relu", (1, 5, 5))
