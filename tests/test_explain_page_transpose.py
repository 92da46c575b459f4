"""``numcnn explain "ConvTranspose2d(...)" --html`` and ``--values``: the page's arrays against
PyTorch (float64), every cell's sum, the scatter's stamps, math.md §11.3's example, and the
``convtranspose2d`` key=value form."""
from __future__ import annotations

import argparse
import io
import re

import numpy as np
import pytest

from numcnn.explain import explain_config, explain_page, explain_values, one_layer
from numcnn.explain.command import add_explain_parser, run_explain
from numcnn.explain.examples import PAGES, seed_inputs, transpose_inputs
from numcnn.explain.values import sample_inputs

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TRANSPOSES = [
    ("convtranspose2d(1, 1, 3, stride=2)", (1, 2, 2)),
    ("convtranspose2d(1, 1, 3, stride=2, output_padding=1)", (1, 2, 3)),
    ("convtranspose2d(2, 3, 3, stride=2, padding=1)", (2, 3, 2)),
    (("convtranspose2d(4, 2, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), "
     "dilation=(1, 2), groups=2)"), (4, 3, 3)),
    ("convtranspose2d(1, 2, 2, stride=3, padding=1, bias=False)", (1, 3, 2)),
    ("convtranspose2d(1, 1, 2, stride=1, dilation=3, output_padding=2)", (1, 2, 2)),  # s <= r < d
]


def shown(data: dict, name: str) -> np.ndarray:
    return np.array([g["rows"] for g in data["arrays"][name]["grids"]], dtype=float)


def stage(data: dict, sid: str) -> dict:
    return next(s for s in data["stages"] if s["id"] == sid)


def product_sum(terms: str) -> float:
    """``a·b + c·(−d) + b[o] (v) = r``: the left side evaluated."""
    total = 0.0
    for term in terms.split(" = ")[0].replace("−", "-").split(" + "):
        term = re.sub(r"^b\[\d+\] \((.*)\)$", r"\1", term.strip())
        total += float(np.prod([float(f.strip("()")) for f in term.split("·")]))
    return total


def result_of(terms: str) -> float:
    return float(terms.split(" = ")[1].split()[0].replace("−", "-"))


def torch_transpose(plan, inputs):
    """Y, gX, gW, gb of the layer by PyTorch, float64."""
    layer = plan.layer
    x = torch.tensor(inputs["x"], requires_grad=True)
    w = torch.tensor(inputs["w"], requires_grad=True)
    b = torch.tensor(inputs["b"], requires_grad=True) if "b" in inputs else None
    y = TF.conv_transpose2d(x, w, b, layer.stride, layer.padding, layer.output_padding,
                            layer.groups, layer.dilation)
    y.backward(torch.tensor(inputs["gy"]))
    return (y.detach().numpy(), x.grad.numpy(), w.grad.numpy(),
            None if b is None else b.grad.numpy())


@pytest.mark.parametrize("spec, shape", TRANSPOSES)
def test_page_numbers_are_torchs(spec, shape):
    plan, _ = one_layer(spec, shape)
    inputs = sample_inputs(plan)
    data = explain_page(spec, shape)
    assert data["kind"] == "convtranspose2d"
    y, gx, gw, gb = torch_transpose(plan, inputs)
    bias = 0 if gb is None else inputs["b"].reshape(-1, 1, 1)
    np.testing.assert_allclose(shown(data, "Y"), y[0], atol=1e-9)
    np.testing.assert_allclose(shown(data, "gX"), gx[0], atol=1e-9)
    C_in, Qg, kh, kw = gw.shape
    np.testing.assert_allclose(shown(data, "gW"), gw.reshape(C_in * Qg, kh, kw), atol=1e-9)
    if gb is not None:
        assert stage(data, "gW")["lines"][-1] == \
            "gb[o] = Σ gY[o] = " + ", ".join(str(int(v)) for v in gb)
    # the seed's inserted form and the scatter's uncropped output give the same Y
    np.testing.assert_allclose(shown(data, "Y_ins") + bias, y[0], atol=1e-9)
    (ph, pw), (Ho, Wo) = plan.layer.padding, y.shape[2:]
    np.testing.assert_allclose(shown(data, "Y_pad")[:, ph:ph + Ho, pw:pw + Wo] + bias, y[0],
                               atol=1e-9)
    # gX is the plain conv of gY with W (K itself), and Y - b the conv's input gradient of X
    layer = plan.layer
    k = TF.conv2d(torch.tensor(inputs["gy"]), torch.tensor(inputs["w"]), None, layer.stride,
                  layer.padding, layer.dilation, layer.groups).numpy()
    np.testing.assert_allclose(shown(data, "gX"), k[0, :, :shape[1], :shape[2]], atol=1e-9)


@pytest.mark.parametrize("spec, shape", TRANSPOSES)
def test_every_cell_shows_products_that_sum_to_the_kernels_value(spec, shape):
    data = explain_page(spec, shape)
    arrays = {name: shown(data, name) for name in data["arrays"]}
    for sid in ("sum", "correlate", "gX", "gW"):
        cells = stage(data, sid)["cells"]
        assert cells and stage(data, sid)["fill"] == cells[0]["target"][0]
        for cell in cells:
            name, g, i, j = cell["target"]
            assert result_of(cell["terms"]) == pytest.approx(arrays[name][g, i, j], abs=1e-9)
            if "products are 0" not in cell["terms"]:
                assert product_sum(cell["terms"]) == pytest.approx(arrays[name][g, i, j],
                                                                   abs=1e-9)


@pytest.mark.parametrize("spec, shape", TRANSPOSES)
def test_the_scatters_stamps_add_up_to_y_pad(spec, shape):
    """Each scatter step lists what one input cell adds where; together they are Y_pad."""
    data = explain_page(spec, shape)
    y_pad = shown(data, "Y_pad")
    total = np.zeros_like(y_pad)
    cells = stage(data, "scatter")["cells"]
    assert len(cells) == np.prod(shape)                      # one step per input cell
    for cell in cells:
        for add in cell["terms"].split("; "):
            where, product = add.split(" += ")
            o, i, j = map(int, re.findall(r"\d+", where))
            total[o, i, j] += product_sum(product)
        assert [m[3] for m in cell["mark"]["X"]] == ["a"]
    np.testing.assert_allclose(total, y_pad, atol=1e-9)
    r_rows = [m for m in stage(data, "scatter")["marks"].get("Y_pad", []) if m[3] == "r"]
    assert all(y_pad[g, i, j] == 0 for g, i, j, _ in r_rows)   # output_padding: no stamp
    plan, _ = one_layer(spec, shape)
    assert bool(r_rows) == any(plan.layer.output_padding)


def test_the_shipped_page_is_the_seeds_gx_as_a_layer():
    """math.md §11.3: gY = [[1, 2], [3, 4]] through ConvTranspose2d(1, 1, 3, stride=2) is §9.1's
    5x5 gX; its inserted form is the seed's 7x7 picture; with §9.1's X as gY, its gX is the
    conv's Y and its gW the conv's gW (the adjoint pair, both ways)."""
    spec, shape, inputs, title = PAGES["convtranspose-2x2-k3-s2.html"]
    data = explain_page(spec, shape, inputs=inputs(), title=title)
    seed = seed_inputs(5)
    x, w, gy = (torch.tensor(seed[k], requires_grad=True) for k in ("x", "w", "gy"))
    y = TF.conv2d(x, w, None, stride=2)
    y.backward(gy)
    np.testing.assert_array_equal(shown(data, "Y")[0], x.grad.numpy()[0, 0])
    np.testing.assert_array_equal(shown(data, "Y")[0], [[1, 0, 1, 0, -2], [2, 1, 4, 2, 0],
                                                       [3, -1, 2, -2, -2], [6, 3, 8, 4, 0],
                                                       [0, -3, 3, -4, 4]])
    np.testing.assert_array_equal(shown(data, "gX")[0], y.detach().numpy()[0, 0])
    np.testing.assert_array_equal(shown(data, "gX")[0], [[15, 21], [45, 51]])
    np.testing.assert_array_equal(shown(data, "gW")[0], w.grad.numpy()[0, 0])
    assert shown(data, "P").shape == (1, 7, 7)
    np.testing.assert_array_equal(shown(data, "P")[0, 2:5, 2:5], [[1, 0, 2], [0, 0, 0],
                                                                  [3, 0, 4]])
    assert transpose_inputs()["gy"].shape == (1, 1, 5, 5)


def _printed(text: str, name: str) -> list[float]:
    """The numbers of one printed array, in order (index lines such as ``  [0, 1]`` skipped)."""
    block = text.split(f"\n{name} (")[1].split("\n")[1:]
    out = []
    for line in block:
        if line.startswith("  ["):
            continue
        if not line.startswith("    "):
            break
        out += [float(v) for v in line.split()]
    return out


def test_values_print_the_arrays():
    spec, shape = TRANSPOSES[3]
    text = explain_values(spec, shape)
    plan, _ = one_layer(spec, shape)
    y, gx, gw, _ = torch_transpose(plan, sample_inputs(plan))
    for name in ("X", "W", "Y_pad", "Y", "G", "P", "W_T", "Y_ins", "gY", "gX", "gW"):
        assert f"\n{name} (" in text, name
    np.testing.assert_allclose(_printed(text, "Y"), y[0].ravel())
    np.testing.assert_allclose(_printed(text, "gX"), gx[0].ravel())
    np.testing.assert_allclose(_printed(text, "gW"), gw.ravel())


def cli(*argv) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="numcnn")
    add_explain_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_explain(parser.parse_args(["explain", *argv]), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_writes_the_page_for_a_layer_spec_and_for_key_values(tmp_path):
    page = tmp_path / "up.html"
    code, out, err = cli("ConvTranspose2d(1, 1, 3, stride=2)", "--input", "1x2x2", "--html",
                         str(page))
    assert code == 0 and not err
    assert f"wrote {page}: 10 stages, 78 steps" in out
    assert '"kind":"convtranspose2d"' in page.read_text(encoding="utf-8")
    code, out, err = cli("convtranspose2d", "C_in=1", "C_out=1", "H=2", "W=2", "k=3", "s=2",
                         "--html", str(page), "--values")
    assert code == 0 and not err and "\nY_ins (1, 1, 5, 5)" in out


def test_key_value_form_is_the_layer_spec():
    text = explain_config("convtranspose2d", ["N=2", "C_in=4", "C_out=6", "H=3", "W=5",
                                              "k=3x2", "s=2x3", "p=1x0", "r=1x2", "d=1x2", "g=2"],
                          trace=True)
    assert text.plans[0].out_shape == (2, 6, 6, 17)           # math.md 11.2's doctest
    assert "numcnn explain convtranspose2d N=2 C_in=4 C_out=6 H=3 W=5 k=3x2 s=2x3 p=1x0 r=1x2 " \
           "d=1x2 g=2" in str(text)
    assert "all match" in str(text)


@pytest.mark.parametrize("argv, match", [
    (("convtranspose2d", "H=2", "W=2", "k=3", "s=2", "r=2"),
     "output_padding must be smaller than either stride or dilation"),
    (("convtranspose2d", "H=2", "W=2", "k=3", "q=1"), "unknown key 'q'"),
    (("convtranspose2d(1, 1, 3, stride=4)", "--input", "1x20x20", "--html", "x.html"),
     "output 1x79x79"),                                       # small input, large output
    (("convtranspose2d(100000, 100000, 3)", "--input", "1x2x2"), "335 GiB"),
])
def test_refusals_are_one_line(argv, match):
    code, out, err = cli(*argv)
    assert code == 2 and not out
    assert err.startswith("numcnn: error: ") and err.count("\n") == 1 and match in err


def test_the_page_is_linked_from_math_md_and_the_readme():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    name = "convtranspose-2x2-k3-s2.html"
    assert f"](pages/{name})" in (root / "docs" / "math.md").read_text(encoding="utf-8")
    assert f"](docs/pages/{name})" in (root / "README.md").read_text(encoding="utf-8")
