"""``numcnn explain`` on ConvTranspose2d: the output-size arithmetic with the real numbers, the
backward tensors, and a trace that checks every shape and both forward forms against the code."""
from __future__ import annotations

import pytest

from numcnn import nn
from numcnn.cli import main
from numcnn.explain import ExplainError, explain

LAYERS = [  # (spec, input (C, H, W))
    ("convtranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)", (4, 5, 4)),
    (("convtranspose2d(3, 2, (2, 3), stride=(3, 1), padding=(1, 0), dilation=(1, 2), "
     "bias=False)"), (3, 4, 5)),
    ("convtranspose2d(2, 2, 2, dilation=3, output_padding=2)", (2, 3, 3)),    # s <= r < d
    ("convtranspose2d(2, 3, 1, stride=4, output_padding=(3, 1))", (2, 2, 3)),  # stride > kernel
]


@pytest.mark.parametrize("spec, shape", LAYERS)
def test_trace_checks_every_shape_and_both_forms(spec, shape):
    text = explain(spec, shape, batch=2, backward=True, trace=True)
    assert text.trace is not None and not text.trace.mismatches
    assert text.trace.values >= 5 and text.trace.shapes >= 15
    plan = text.plans[0]
    assert plan.kind == "convtranspose2d"
    assert {row.name for row in plan.tensors} >= {"dcols", "Y_pad", "P", "W_T", "Y_ins", "cols",
                                                  "gX", "gW"}


def test_arithmetic_and_decoder_in_a_model():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                          nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1))
    text = explain(model, (1, 28, 28), batch=3, trace=True)
    assert "H, W: (14-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 28" in text
    assert text.plans[-1].out_shape == (3, 1, 28, 28)
    # FLOPs: every input pixel times the (C_out/g)·kh·kw kernel, a multiply-add each
    assert text.plans[-1].flops_fwd == 2 * 3 * 4 * 14 * 14 * 16 + 3 * 28 * 28


def test_impossible_configuration_is_explained():
    with pytest.raises(ExplainError, match=r"\(2-1\)\*1 - 2\*3 \+ 1\*\(3-1\) \+ 0 \+ 1 = -2"):
        explain("convtranspose2d(1, 1, 3, padding=3)", (1, 2, 2))


def test_cli(capsys):
    assert main(["explain", "convtranspose2d(8, 4, 4, stride=2, padding=1)", "--input",
                 "8x7x7", "--backward", "--trace"]) == 0
    out = capsys.readouterr().out
    assert "(7-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 14" in out and "all agree" in out
