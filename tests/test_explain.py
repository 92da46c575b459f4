"""``numcnn explain``: the numbers it prints, its trace against the code, its errors, its CLI."""
from __future__ import annotations

import argparse
import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numcnn import nn
from numcnn.explain import ExplainError, TraceError, explain, explain_op
from numcnn.explain.command import add_explain_parser, run_explain
from numcnn.explain.parse import parse_layer_spec
from numcnn.models import get_model

EXAMPLE_D = {"N": 2, "C_in": 4, "C_out": 6, "H": 7, "W": 6, "k": (3, 2), "s": (2, 1),
             "p": (1, 0), "d": (1, 2), "g": 2}


def axis_table(text: str) -> dict[str, tuple[int, int]]:
    """``{quantity: (H, W)}`` parsed from the per-axis block of an explanation."""
    rows = re.findall(r"^  (\S.*?\S)\s+(-?\d+)\s+(-?\d+)$", text, re.MULTILINE)
    return {q: (int(h), int(w)) for q, h, w in rows}


def tensor_table(text: str) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` parsed from the tensor block of an explanation."""
    rows = re.findall(r"^  (\w+)\s+(\([\d, ]*\))\s", text, re.MULTILINE)
    return {name: tuple(int(v) for v in shape.strip("(),").split(",") if v.strip())
            for name, shape in rows}


def cli(*argv) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="numcnn")
    add_explain_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_explain(parser.parse_args(["explain", *argv]), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# --- Example D (every parameter at once) and friends ------------------------------------------

def test_example_d_per_axis_quantities_and_tensor_shapes():
    text = explain_op("conv2d", **EXAMPLE_D)
    axes = axis_table(text)
    assert axes["k_eff = d(k-1)+1 (k when d=1)"] == (3, 3)
    assert axes["padded input H+2p"] == (9, 6)
    assert axes["out = (H+2p-k)/s+1, rounded down"] == (4, 4)
    assert axes["general: floor((H+2p-k_eff)/s)+1"] == (4, 4)
    assert axes["remainder r = (H+2p-k_eff) mod s"] == (0, 0)
    assert axes["input rows/cols read by no window"] == (0, 0)
    assert axes["zero-inserted gY G = s(out-1)+1"] == (7, 4)
    assert axes["inserted pad before = k_eff-1-p"] == (1, 2)
    assert axes["inserted pad after  = k_eff-1-p+r"] == (1, 2)
    assert axes["padded inserted gY P = H+k_eff-1"] == (9, 8)
    shapes = tensor_table(text)
    assert shapes["X"] == (2, 4, 7, 6) and shapes["W"] == (6, 2, 3, 2) and shapes["b"] == (6,)
    assert shapes["X_pad"] == (2, 4, 9, 6) and shapes["Y"] == shapes["gY"] == (2, 6, 4, 4)
    assert shapes["im2col"] == (2, 4, 3, 2, 4, 4) and shapes["cols"] == (2, 2, 12, 16)
    assert shapes["gb"] == (6,) and shapes["gW"] == (6, 2, 3, 2) and shapes["gX"] == (2, 4, 7, 6)
    assert shapes["G"] == (2, 6, 7, 4) and shapes["P"] == (2, 6, 9, 8)
    assert shapes["W_T"] == (4, 3, 3, 2) and shapes["dcols"] == (2, 2, 12, 16)
    assert shapes["R"] == (2, 6, 4, 3, 3) and shapes["gW_rot"] == (6, 2, 3, 2)
    assert "[M=N*H_out*W_out=32] x [K=C_in/g*kh*kw=12] x [C_out/g=3]" in text
    assert "FLOPs fwd = gW = gX = 4608" in text
    assert "768 floats" in text and "3024 floats" in text


def test_remainder_gets_its_extra_padding_after():
    text = explain_op("conv2d", H=6, W=6, k=3, s=2)
    axes = axis_table(text)
    assert axes["remainder r = (H+2p-k_eff) mod s"] == (1, 1)
    assert axes["input rows/cols read by no window"] == (1, 1)
    assert axes["inserted pad before = k_eff-1-p"] == (2, 2)
    assert axes["inserted pad after  = k_eff-1-p+r"] == (3, 3)
    assert tensor_table(text)["P"] == (1, 1, 8, 8)
    assert "G padded 2 top/3 bottom, 2 left/3 right (r adds after)" in text


def test_pool_ceil_mode_examples():
    text = explain_op("avgpool2d", N=1, C=3, H=6, W=6, k=3, s=2, p=1, ceil_mode=True,
                      count_include_pad=False)
    axes = axis_table(text)
    assert axes["out (ceil mode, PyTorch rule)"] == (4, 4)
    assert axes["extra pad after (ceil_mode overhang)"] == (1, 1)
    assert axes["input rows/cols read by no window"] == (0, 0)
    shapes = tensor_table(text)
    assert shapes["X_pad"] == (1, 3, 9, 9) and shapes["D"] == (4, 4)
    assert shapes["gX"] == (1, 3, 6, 6)
    text = explain_op("maxpool2d", N=1, C=3, H=7, W=6, k=3, s=2, p=1, d=2, ceil_mode=True)
    assert axis_table(text)["input rows/cols read by no window"] == (4, 3)
    assert tensor_table(text)["argmax"] == (1, 3, 3, 3)


# --- models and layers -------------------------------------------------------------------------

def test_lenet5_table_arithmetic_params_flops_memory():
    text = explain("lenet5", batch=64)
    assert text.startswith("numcnn explain lenet5: input (1, 32, 32), batch 64")
    assert ("H, W: (32 + 2*0 - 5)/1 + 1 = 28 (rounded down); "
            "general: floor((32 + 2*0 - 1*(5-1) - 1) / 1) + 1 = 28") in text
    assert ("H, W: (28 + 2*0 - 2)/2 + 1 = 14 (rounded down); "
            "general: floor((28 + 2*0 - 1*(2-1) - 1) / 2) + 1 = 14") in text
    assert "(16, 5, 5) -> 16*5*5 = 400" in text
    conv1 = text.plans[0]
    assert conv1.in_shape == (64, 1, 32, 32) and conv1.out_shape == (64, 6, 28, 28)
    assert conv1.params == 156
    assert conv1.flops_fwd == 2 * 64 * 6 * 28 * 28 * 25 + 64 * 6 * 28 * 28
    assert conv1.act_bytes(4) == 64 * 6 * 28 * 28 * 4
    assert sum(p.params for p in text.plans) == get_model("lenet5").num_parameters() == 61706
    assert re.search(r"total\s+61,706\s", text)
    assert [p.out_shape for p in text.plans][-1] == (64, 10)
    doubled = explain("lenet5", batch=64, dtype="float64").plans
    assert doubled[0].act_bytes(8) == 2 * conv1.act_bytes(4)


def test_brief_example_arithmetic():
    text = explain("conv2d(3, 16, kernel_size=3, stride=2, padding=1)", (3, 28, 28))
    assert "floor((28 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 14" in text
    assert text.plans[0].out_shape == (1, 16, 14, 14)


def test_backward_lists_every_intermediate():
    text = explain("lenet5", backward=True)
    block = text.split("[1] conv1")[1].split("\n\n")[0]
    shapes = tensor_table(block)
    assert shapes["cols"] == (1, 1, 25, 784) and shapes["dcols"] == (1, 1, 25, 784)
    assert shapes["G"] == (1, 6, 28, 28) and shapes["P"] == (1, 6, 36, 36)
    assert shapes["W_T"] == (1, 6, 5, 5)
    assert "G padded 4 top/4 bottom, 4 left/4 right" in block
    assert "sums over n and L = (o_h, o_w)" in block
    assert "axes (0, 2, 3)" in block
    assert "sums over all (o, u) with s*o + d*u - p = i" in block
    assert "flatten in forward()" in text          # LeNet5 flattens inside forward()


@pytest.mark.parametrize("name", ["lenet5", "convnet"])
def test_trace_passes_for_the_models(name):
    text = explain(name, batch=64, backward=True, trace=True)
    assert re.search(r"trace: \d+ shapes checked, all match", text)
    assert text.trace.shapes > 100 and not text.trace.mismatches


def test_trace_passes_for_a_sequential_with_reused_shapes():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding="same", groups=2), nn.ReLU(),
                          nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
                          nn.AvgPool2d(2, ceil_mode=True, count_include_pad=False),
                          nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(24, 5),
                          nn.Sigmoid())
    text = explain(model, (2, 11, 9), batch=3, trace=True)
    assert text.trace.shapes > 60 and "all match" in text


conv_configs = st.fixed_dictionaries({
    "N": st.integers(1, 2), "g": st.integers(1, 3), "cin": st.integers(1, 2),
    "cout": st.integers(1, 2), "k": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "s": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "p": st.tuples(st.integers(0, 3), st.integers(0, 3)),
    "d": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "extra": st.tuples(st.integers(0, 6), st.integers(0, 6)),
})


@settings(max_examples=40)
@given(conv_configs)
def test_trace_random_conv_configs(c):
    size = [max(1, d * (k - 1) + 1 - 2 * p) + e
            for k, p, d, e in zip(c["k"], c["p"], c["d"], c["extra"])]
    text = explain_op("conv2d", N=c["N"], C_in=c["g"] * c["cin"], C_out=c["g"] * c["cout"],
                      H=size[0], W=size[1], k=c["k"], s=c["s"], p=c["p"], d=c["d"], g=c["g"],
                      trace=True)
    assert text.trace.shapes == 24 and text.trace.values == 5


pool_configs = st.fixed_dictionaries({
    "op": st.sampled_from(["avgpool2d", "maxpool2d"]),
    "k": st.tuples(st.integers(1, 4), st.integers(1, 4)),
    "s": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "pad": st.tuples(st.integers(0, 2), st.integers(0, 2)),
    "d": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "extra": st.tuples(st.integers(0, 5), st.integers(0, 5)),
    "ceil_mode": st.booleans(), "count_include_pad": st.booleans(),
})


@settings(max_examples=40)
@given(pool_configs)
def test_trace_random_pool_configs(c):
    d = c["d"] if c["op"] == "maxpool2d" else (1, 1)
    p = [min(pp, k // 2) for pp, k in zip(c["pad"], c["k"])]
    size = [max(1, dd * (k - 1) + 1 - 2 * pp) + e
            for k, pp, dd, e in zip(c["k"], p, d, c["extra"])]
    params = {"N": 2, "C": 2, "H": size[0], "W": size[1], "k": c["k"], "s": c["s"],
              "p": tuple(p), "ceil_mode": c["ceil_mode"]}
    if c["op"] == "maxpool2d":
        params["d"] = d
    else:
        params["count_include_pad"] = c["count_include_pad"]
    text = explain_op(c["op"], trace=True, **params)
    assert text.trace.shapes == 10 and not text.trace.mismatches


def test_trace_catches_a_drift(monkeypatch):
    from numcnn.explain import trace

    monkeypatch.setattr(trace, "dilate2d", lambda gy, sh, sw: gy)      # "forgets" the zeros
    with pytest.raises(TraceError, match=r"G: explained \(1, 1, 3, 3\), code \(1, 1, 2, 2\)"):
        explain_op("conv2d", H=6, W=6, k=3, s=2, trace=True)
    code, out, err = cli("conv2d", "H=6", "W=6", "k=3", "s=2", "--trace")
    assert code == 1 and "mismatches" in err and "numcnn explain conv2d" in out


# --- configurations that cannot run are explained ----------------------------------------------

def test_kernel_that_does_not_fit_is_explained():
    with pytest.raises(ExplainError) as info:
        explain_op("conv2d", H=3, W=3, k=5)
    message = str(info.value)
    assert "kernel 5 does not fit in the padded input height 3 + 0 + 0 = 3" in message
    assert "the output would have -1 rows; use padding >= 1 or a smaller kernel" in message
    assert "floor((3 + 2*0 - 1*(5-1) - 1) / 1) + 1 = -1" in message


def test_model_error_names_the_layer_and_its_input():
    with pytest.raises(ExplainError, match=r"layer 3 \(2\) Conv2d\(6, 16.*on input \(1, 6, 2, 2\)"
                                           r".*kernel 5 does not fit"):
        explain("conv2d(1, 6, 5), relu, conv2d(6, 16, 5)", (1, 6, 6))
    with pytest.raises(ExplainError, match="rejected input .* expected input of shape"):
        explain("lenet5", (1, 28, 28))
    with pytest.raises(ExplainError, match="input has 256 features .* weight expects 400"):
        explain("conv2d(1, 6, 5), avgpool2d(2), conv2d(6, 16, 5), avgpool2d(2), flatten, "
                "linear(400, 120)", (1, 28, 28))


def test_batch_norm_on_an_input_without_a_channel_axis_says_so():
    # An input of shape (N,) has no channel count to compare with num_features (it was read as
    # None: "input has None channels").
    with pytest.raises(ExplainError, match=r"batch_norm: expected an input with a channel axis "
                                           r"\(N, C, \.\.\.\), got shape \(1,\)"):
        explain(nn.BatchNorm1d(3), ())


@pytest.mark.parametrize("op, params, match", [
    ("conv2d", {"C_in": 4, "C_out": 6, "H": 8, "W": 8, "k": 3, "g": 3}, "divisible by groups=3"),
    ("avgpool2d", {"H": 8, "W": 8, "k": 2, "p": 2}, "at most half the kernel size"),
    ("maxpool2d", {"H": 2, "W": 2, "k": 3, "d": 2}, "does not fit"),
])
def test_invalid_op_configurations(op, params, match):
    with pytest.raises(ExplainError, match=match):
        explain_op(op, **params)


# --- the command line --------------------------------------------------------------------------

def test_cli_exit_codes_and_one_line_errors():
    code, out, err = cli("lenet5", "--batch", "64", "--backward")
    assert code == 0 and "[12] fc3" in out and not err
    code, out, err = cli("conv2d", "N=2", "C_in=4", "C_out=6", "H=7", "W=6", "k=3x2", "s=2x1",
                         "p=1x0", "d=1x2", "g=2", "--trace")
    assert code == 0 and "trace: 24 shapes checked, all match" in out
    code, out, err = cli("avgpool2d", "N=1,C=3,H=6,W=6,k=3,s=2,p=1,ceil_mode=1")
    assert code == 0 and "ceil mode" in out
    code, out, err = cli("conv2d", "N=1", "C_in=1", "C_out=1", "H=3", "W=3", "k=5")
    assert code == 2 and not out
    assert err.count("\n") == 1 and err.startswith("numcnn: error: ")
    assert "kernel 5 does not fit" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["nosuchmodel"], ["conv2d(1, 6, 5)", "--input", "1x2"], ["lenet5", "--input", "axb"],
    ["avgpool2d", "H=6", "W=6", "k=2", "d=2"], ["conv2d", "H=6", "W=6"],
    ["lenet5", "N=2"], ["conv2d", "H=6", "W=6", "k=3", "--input", "1x6x6"],
    ["__import__('os').system('echo hacked')"],
])
def test_cli_invalid_input_exits_2(argv):
    code, _, err = cli(*argv)
    assert code == 2 and err.startswith("numcnn: error: ") and err.count("\n") == 1


def test_numcnn_command_runs_explain(capsys):
    from numcnn.cli import main

    assert main(["explain", "convnet", "--trace"]) == 0
    assert "trace:" in capsys.readouterr().out


# --- the layer-spec parser ----------------------------------------------------------------------

@pytest.mark.parametrize("spec", [
    "__import__('os')", "os.system('ls')", "conv2d(1, 2, kernel_size=__import__('os'))",
    "conv2d(*[1, 2, 3])", "conv2d(**{'kernel_size': 3})", "(lambda: 0)()",
    "conv2d(1, 2, 3).__class__", "nn.Conv2d(1, 2, 3)", "conv2d(1, 2, open('x'))",
    "eval('1')", "conv2d(1, 2, 3); relu", "[x for x in ()]", "", "conv2d(1, 2, 3" + ")" * 2,
])
def test_layer_spec_parser_rejects_unsafe_input(spec):
    with pytest.raises(ExplainError):
        parse_layer_spec(spec)


def test_layer_spec_parser_builds_nn_layers():
    assert parse_layer_spec("maxpool2d(3, stride=2, padding=1, ceil_mode=True)") == [
        ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True})]
    text = explain("maxpool2d(3, stride=2, padding=1, ceil_mode=True)", (8, 7, 7))
    assert type(text.plans[0].layer) is nn.MaxPool2d and text.plans[0].out_shape == (1, 8, 4, 4)
    text = explain("conv2d(3, 16, kernel_size=3), relu, avg_pool2d(2), Flatten", (3, 8, 8))
    assert [p.kind for p in text.plans] == ["conv2d", "relu", "avgpool2d", "flatten"]
    with pytest.raises(ExplainError, match="Conv2d.*unexpected keyword"):
        explain("conv2d(3, 16, kernel=3)")


def test_explain_accepts_a_layer_object_and_a_full_shape():
    layer = nn.Conv2d(2, 4, 3, stride=2, dilation=2, bias=False)
    text = explain(layer, (5, 2, 13, 11))
    assert text.plans[0].in_shape == (5, 2, 13, 11)
    assert text.plans[0].out_shape == (5, 4, 5, 4)
    assert "b " not in text and not np.isnan(text.plans[0].params)


class FunctionalNet(nn.Module):
    """Activations called functionally in forward, one also as a layer (whose F call is inside)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, dtype=np.float64)
        self.pool = nn.MaxPool2d(2)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4 * 13 * 13, 10, dtype=np.float64)

    def forward(self, x):
        import numcnn.functional as F

        x = self.act(self.pool(F.relu(self.conv(x))))
        return F.log_softmax(self.fc(F.tanh(x.flatten(1))), dim=1)


def test_functional_activations_in_forward_get_their_rows():
    import numcnn.functional as F

    relu, tanh = F.relu, F.tanh
    net = FunctionalNet()
    text = explain(net, (1, 28, 28), trace=True)
    kinds = [p.kind for p in text.plans]
    assert kinds == ["conv2d", "F.relu", "maxpool2d", "relu", "flatten in forward()", "F.tanh",
                     "linear", "F.log_softmax"]
    assert re.search(r"^  2  F\.relu in forward\(\)\s+\(1, 4, 26, 26\)\s+\(1, 4, 26, 26\)\s+0\s+"
                     r"2704", text, re.MULTILINE)
    assert text.trace.mismatches == [] and text.trace.shapes > 40
    assert F.relu is relu and F.tanh is tanh                     # the functions are put back
    assert all("forward" not in m.__dict__ for m in net.modules())   # and the layers' forward


@pytest.mark.parametrize("argv, match", [
    (("conv2d", "N=1", "C_in=3", "C_out=4", "H=5", "W=5", "k=3", "k=4"),
     "conv2d: k is given twice, as 3 and 4"),
    (("maxpool2d", "N=1,C=3,H=5,W=5,k=3,s=1,s=2"), "maxpool2d: s is given twice"),
    (("conv2d", "N=0", "C_in=3", "C_out=4", "H=5", "W=5", "k=3"),
     "N must be a positive batch size, got 0"),
    (("avgpool2d", "N=0", "C=3", "H=5", "W=5", "k=3"), "N must be a positive batch size"),
])
def test_a_contradictory_or_empty_key_value_is_refused(argv, match):
    code, out, err = cli(*argv)
    assert code == 2 and not out
    assert err.count("\n") == 1 and err.startswith("numcnn: error: ") and match in err
    assert cli("conv2d", "N=1", "C_in=3", "C_out=4", "H=5", "W=5", "k=3", "k=3")[0] == 0


@pytest.mark.parametrize("flag", [("--values",), ("--html", "page.html")])
def test_values_of_a_reflect_padded_conv_are_refused_not_shown_zero_padded(tmp_path, flag):
    flag = flag if len(flag) == 1 else (flag[0], str(tmp_path / flag[1]))
    code, out, err = cli("conv2d(1, 1, 3, padding=1, padding_mode='reflect')", "--input", "1x4x4",
                         *flag)
    assert code == 2 and not out and err.count("\n") == 1
    assert "shows zero-padded convolutions only; got padding_mode='reflect'" in err
    assert not (tmp_path / "page.html").exists()
    assert cli("conv2d(1, 1, 3, padding=1)", "--input", "1x4x4", "--values")[0] == 0
