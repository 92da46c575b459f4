"""numcnn.onnx.load on hand-written graphs: every refusal with its whole message, and the
operator patterns that the exported files of tests/interop/test_onnx.py do not produce (a Pad
folded into the layer after it, auto_pad, a bias Add of a Constant node, shape computations with
Slice and Squeeze, opsets before 13).
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

import numcnn.onnx as nco
from numcnn import nn

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the onnx package")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime as an oracle")

helper = onnx.helper
W = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3) / 10   # Conv 1 -> 2, 3x3


def node(op: str, inputs: list[str], outputs: list[str], **attrs):
    return helper.make_node(op, inputs, outputs, **attrs)


def const(name: str, value) -> onnx.NodeProto:
    """A Constant node holding ``value``."""
    return node("Constant", [], [name], value=onnx.numpy_helper.from_array(np.asarray(value)))


def graph(*nodes, init=None, shape=("N", 1, 8, 8), opset=17, extra_inputs=(), outputs=1):
    """A model reading ``input`` of ``shape`` into ``nodes``, with initializers ``init``."""
    inputs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)
              for name in ("input", *extra_inputs)]
    outs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            for name in ("output", "second")[:outputs]]
    inits = [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in (init or {}).items()]
    g = helper.make_graph(list(nodes), "g", inputs, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def run_ort(proto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def pads(values, name="p") -> onnx.NodeProto:
    return const(name, np.array(values, np.int64))


def built(prefix: str, make_layer) -> str:
    """``prefix`` followed by the message of the error that ``make_layer()`` raises."""
    with pytest.raises(ValueError) as info:
        make_layer()
    return prefix + str(info.value)


SUPPORTED = ", ".join(nco.SUPPORTED_OPS)
CHAIN = "numcnn reads only chains of layers, each taking the previous output"

#: id -> (the model, the whole message of the OnnxImportError it raises)
REFUSALS = {
    "two-inputs": (lambda: graph(node("Relu", ["input"], ["output"]), extra_inputs=["b"]),
                   ("load: the graph has 2 inputs and 1 outputs; numcnn reads models with "
                    "exactly one input and one output")),
    "two-outputs": (lambda: graph(node("Relu", ["input"], ["output"]),
                                  node("Relu", ["input"], ["second"]), outputs=2),
                    ("load: the graph has 1 inputs and 2 outputs; numcnn reads models with "
                     "exactly one input and one output")),
    "branch": (lambda: graph(node("Relu", ["input"], ["a"], name="r"),
                             node("Add", ["a", "input"], ["output"], name="sum")),
               (f"load: node 'sum' (Add): it takes ['a', 'input'], but {CHAIN} 'a' first and "
                "constants after it")),
    "constant-first": (lambda: graph(node("Sub", ["c", "input"], ["output"]),
                                     init={"c": np.float32(1)}),
                       (f"load: a Sub node: it takes ['c', 'input'], but {CHAIN} 'input' first "
                        "and constants after it")),
    "domain": (lambda: graph(node("Relu", ["input"], ["output"], domain="com.example")),
               "load: a Relu node: operators of domain 'com.example' are not supported"),
    "unknown-op": (lambda: graph(node("Exp", ["input"], ["output"], name="exp1")),
                   (f"load: node 'exp1' (Exp): the operator is not supported; supported: "
                    f"{SUPPORTED}")),
    "shape-of-unknown": (lambda: graph(node("Shape", ["input"], ["output"]), shape=None),
                         (f"load: a Shape node: the operator is not supported; supported: "
                          f"{SUPPORTED}")),
    "pad-before-relu": (lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]),
                                      node("Pad", ["input", "p"], ["a"], name="pad"),
                                      node("Relu", ["a"], ["output"])),
                        ("load: node 'pad' (Pad): a Pad is supported only right before a Conv, "
                         "MaxPool or AveragePool")),
    "pad-last": (lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]),
                               node("Pad", ["input", "p"], ["output"])),
                 ("load: a Pad node: a Pad is supported only right before a Conv, MaxPool or "
                  "AveragePool")),
    "output-elsewhere": (lambda: graph(node("Relu", ["input"], ["a"]), const("output", 1.0)),
                         ("load: the graph output 'output' is not the end of the chain of layers "
                          "(which ends at 'a')")),
    "missing-input": (lambda: graph(node("Conv", ["input"], ["output"])),
                      "load: a Conv node: the weight input is missing"),
    "computed-weight": (lambda: graph(node("Shape", ["input"], ["s"]),
                                      node("Conv", ["input", "s"], ["output"])),
                        ("load: a Conv node: the weight 's' must be a constant (an initializer "
                         "or a Constant node)")),
    "shape-gather-axis": (lambda: graph(node("Shape", ["input"], ["s"]),
                                        const("i", np.array([0], np.int64)),
                                        node("Gather", ["s", "i"], ["g"], axis=1),
                                        node("Reshape", ["input", "g"], ["output"])),
                          "load: a Gather node: this shape computation is not supported"),
    "shape-unsqueeze-axis": (lambda: graph(node("Shape", ["input"], ["s"]),
                                           const("i", np.array(0, np.int64)),
                                           const("one", np.array([1], np.int64)),
                                           node("Gather", ["s", "i"], ["n"]),
                                           node("Unsqueeze", ["n", "one"], ["t"]),
                                           node("Reshape", ["input", "t"], ["output"])),
                             "load: an Unsqueeze node: this shape computation is not supported"),
    "shape-squeeze-axis": (lambda: graph(node("Shape", ["input"], ["s"]),
                                         const("zero", np.array([0], np.int64)),
                                         const("one", np.array([1], np.int64)),
                                         node("Slice", ["s", "zero", "one"], ["n1"]),
                                         node("Squeeze", ["n1", "one"], ["n"]),
                                         node("Reshape", ["input", "n"], ["output"])),
                           "load: a Squeeze node: this shape computation is not supported"),
    "shape-slice-axes": (lambda: graph(node("Shape", ["input"], ["s"]),
                                       const("zero", np.array([0], np.int64)),
                                       const("one", np.array([1], np.int64)),
                                       node("Slice", ["s", "zero", "one", "one"], ["t"]),
                                       node("Reshape", ["input", "t"], ["output"])),
                         "load: a Slice node: this shape computation is not supported"),
    "shape-concat-axis": (lambda: graph(node("Shape", ["input"], ["s"]),
                                        const("rest", np.array([-1], np.int64)),
                                        node("Concat", ["s", "rest"], ["t"], axis=1),
                                        node("Reshape", ["input", "t"], ["output"])),
                          "load: a Concat node: this shape computation is not supported"),
    "string-constant": (lambda: graph(node("Constant", [], ["c"], value_string="x"),
                                      node("Relu", ["input"], ["output"])),
                        ("load: a Constant node: only tensor and numeric constants are "
                         "supported, got ['value_string']")),
    "conv-1d": (lambda: graph(node("Conv", ["input", "w"], ["output"]),
                              init={"w": np.zeros((2, 1, 3), np.float32)}),
                ("load: a Conv node: only 2-D convolutions are supported (weight of shape "
                 "(2, 1, 3))")),
    "conv-kernel-shape": (lambda: graph(node("Conv", ["input", "w"], ["output"],
                                             kernel_shape=[5, 5]), init={"w": W}),
                          ("load: a Conv node: kernel_shape [5, 5] does not match the weight "
                           "shape (2, 1, 3, 3)")),
    "pad-then-auto-pad": (lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]),
                                        node("Pad", ["input", "p"], ["a"]),
                                        node("Conv", ["a", "w"], ["output"], auto_pad="VALID"),
                                        init={"w": W}),
                          ("load: a Conv node: a Pad before a convolution with auto_pad='VALID' "
                           "is not supported")),
    "conv-same-lower": (lambda: graph(node("Conv", ["input", "w"], ["output"],
                                           auto_pad="SAME_LOWER"), init={"w": W}),
                        ("load: a Conv node: auto_pad='SAME_LOWER' is supported only as VALID, or "
                         "SAME_UPPER with stride 1")),
    "conv-same-stride-2": (lambda: graph(node("Conv", ["input", "w"], ["output"], strides=[2, 2],
                                              auto_pad="SAME_UPPER"), init={"w": W}),
                           ("load: a Conv node: auto_pad='SAME_UPPER' is supported only as VALID, "
                            "or SAME_UPPER with stride 1")),
    "conv-asymmetric": (lambda: graph(node("Conv", ["input", "w"], ["output"],
                                           pads=[0, 0, 2, 2]), init={"w": W}),
                        ("load: a Conv node: asymmetric pads [0, 0, 2, 2] are supported only as "
                         "the 'same' padding of a stride-1 convolution")),
    "conv-strides": (lambda: graph(node("Conv", ["input", "w"], ["output"], strides=[1, 1, 1]),
                                   init={"w": W}),
                     "load: a Conv node: strides [1, 1, 1] must have 2 values, one per axis"),
    "conv-build": (lambda: graph(node("Conv", ["input", "w"], ["output"], group=3),
                                 init={"w": W}),
                   lambda: built("load: a Conv node: cannot build Conv2d: ",
                                 lambda: nn.Conv2d(3, 2, 3, groups=3))),
    "conv-transpose-1d": (lambda: graph(node("ConvTranspose", ["input", "w"], ["output"]),
                                        init={"w": np.zeros((1, 2, 3), np.float32)}),
                          ("load: a ConvTranspose node: only 2-D transposed convolutions are "
                           "supported (weight of shape (1, 2, 3))")),
    "conv-transpose-kernel-shape": (
        lambda: graph(node("ConvTranspose", ["input", "w"], ["output"], kernel_shape=[2, 2]),
                      init={"w": W.reshape(1, 2, 3, 3)}),
        ("load: a ConvTranspose node: kernel_shape [2, 2] does not match the weight shape "
         "(1, 2, 3, 3)")),
    "conv-transpose-same": (
        lambda: graph(node("ConvTranspose", ["input", "w"], ["output"], auto_pad="SAME_UPPER"),
                      init={"w": W.reshape(1, 2, 3, 3)}),
        ("load: a ConvTranspose node: output_shape and auto_pad SAME_* are not supported (give "
         "explicit pads and output_padding)")),
    "conv-transpose-build": (
        lambda: graph(node("ConvTranspose", ["input", "w"], ["output"], output_padding=[1, 1]),
                      init={"w": W.reshape(1, 2, 3, 3)}),
        lambda: built("load: a ConvTranspose node: cannot build ConvTranspose2d: ",
                      lambda: nn.ConvTranspose2d(1, 2, 3, output_padding=1))),
    "gemm-trans-a": (lambda: graph(node("Gemm", ["input", "w"], ["output"], transA=1),
                                   init={"w": np.zeros((4, 3), np.float32)}, shape=("N", 4)),
                     "load: a Gemm node: transA=1 is not supported (the input must be (N, in))"),
    "gemm-trans-b-flag": (lambda: graph(node("Gemm", ["input", "w"], ["output"], transB=2),
                                        init={"w": np.zeros((3, 4), np.float32)}, shape=("N", 4)),
                          "load: a Gemm node: attribute 'transB' is 2, expected 0 or 1"),
    "gemm-trans-a-flag": (lambda: graph(node("Gemm", ["input", "w"], ["output"], transA=-1),
                                        init={"w": np.zeros((4, 3), np.float32)}, shape=("N", 4)),
                          "load: a Gemm node: attribute 'transA' is -1, expected 0 or 1"),
    "gemm-row-bias": (lambda: graph(node("Gemm", ["input", "w", "c"], ["output"]),
                                    init={"w": np.zeros((4, 3), np.float32),
                                          "c": np.zeros((2, 3), np.float32)}, shape=("N", 4)),
                      "load: a Gemm node: a C of shape (2, 3) (a per-row bias) is not supported"),
    "gemm-bias-size": (lambda: graph(node("Gemm", ["input", "w", "c"], ["output"]),
                                     init={"w": np.zeros((4, 3), np.float32),
                                           "c": np.zeros(2, np.float32)}, shape=("N", 4)),
                       "load: a Gemm node: the bias of shape (2,) does not fit 3 outputs"),
    "matmul-3d": (lambda: graph(node("MatMul", ["input", "w"], ["output"]),
                                init={"w": np.zeros((4, 3, 1), np.float32)}, shape=("N", 4)),
                  "load: a MatMul node: the weight must be 2-D (in, out), got shape (4, 3, 1)"),
    "lone-add": (lambda: graph(node("Add", ["input", "c"], ["output"]),
                               init={"c": np.float32(1)}),
                 ("load: an Add node: an Add is supported only as the bias right after a Conv or a "
                  "MatMul")),
    "bias-add-of-wrong-shape": (
        lambda: graph(node("Conv", ["input", "w"], ["a"]), node("Add", ["a", "b"], ["output"]),
                      init={"w": W, "b": np.zeros(3, np.float32)}),
        ("load: an Add node: an Add is supported only as the bias right after a Conv or a "
         "MatMul")),
    "add-along-the-width": (  # ONNX broadcasts a (C,) constant along the last axis, W
        lambda: graph(node("Conv", ["input", "w"], ["a"]), node("Add", ["a", "b"], ["output"]),
                      init={"w": W, "b": np.array([1.0, -1.0], np.float32)},
                      shape=("N", 1, 4, 4)),
        "load: an Add node: an Add is supported only as the bias right after a Conv or a MatMul"),
    "pool-same": (lambda: graph(node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2],
                                     auto_pad="SAME_UPPER")),
                  ("load: a MaxPool node: auto_pad='SAME_UPPER' is not supported (give explicit "
                   "pads)")),
    "pool-indices": (lambda: graph(node("MaxPool", ["input"], ["output", "idx"],
                                        kernel_shape=[2, 2])),
                     "load: a MaxPool node: the Indices output is not supported"),
    "pool-1d": (lambda: graph(node("AveragePool", ["input"], ["output"], kernel_shape=[2]),
                              shape=("N", 1, 8)),
                "load: an AveragePool node: only 2-D pooling is supported, got kernel_shape [2]"),
    # AveragePool takes dilations since opset 19
    "avg-pool-dilated": (lambda: graph(node("AveragePool", ["input"], ["output"],
                                            kernel_shape=[2, 2], dilations=[2, 2]), opset=19),
                         "load: an AveragePool node: dilated average pooling is not supported"),
    "pool-asymmetric-ceil": (lambda: graph(node("MaxPool", ["input"], ["output"],
                                                kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                                                ceil_mode=1)),
                             ("load: a MaxPool node: pads [0, 0, 1, 1] with ceil_mode=1 are not "
                              "supported")),
    "pool-asymmetric-unknown-size": (
        lambda: graph(node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2],
                           pads=[0, 0, 1, 1]), shape=["N", 1, "H", "W"]),
        ("load: a MaxPool node: asymmetric or separate padding needs the input height and width, "
         "which shape inference could not find")),
    "pad-then-avg-pool-pads": (
        lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]), node("Pad", ["input", "p"], ["a"]),
                      node("AveragePool", ["a"], ["output"], kernel_shape=[3, 3],
                           pads=[1, 1, 1, 1], count_include_pad=1)),
        ("load: an AveragePool node: a Pad of [1, 1, 1, 1] then pads [1, 1, 1, 1] (with "
         "count_include_pad=1) is not supported")),
    "pool-pads-match-nothing": (
        lambda: graph(node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2],
                           strides=[2, 2], pads=[0, 0, 3, 3])),
        ("load: a MaxPool node: pads [0, 0] before and [3, 3] after (input [8, 8]) match no "
         "symmetric padding, with or without ceil_mode")),
    "max-pool-ceil-mode-flag": (lambda: graph(node("MaxPool", ["input"], ["output"],
                                                  kernel_shape=[2, 2], ceil_mode=2)),
                                "load: a MaxPool node: attribute 'ceil_mode' is 2, expected 0 or 1"),
    "max-pool-storage-order-flag": (
        lambda: graph(node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2],
                           storage_order=2)),
        "load: a MaxPool node: attribute 'storage_order' is 2, expected 0 or 1"),
    "avg-pool-count-include-pad-flag": (
        lambda: graph(node("AveragePool", ["input"], ["output"], kernel_shape=[2, 2],
                           pads=[1, 1, 1, 1], count_include_pad=5)),
        "load: an AveragePool node: attribute 'count_include_pad' is 5, expected 0 or 1"),
    "avg-pool-ceil-mode-flag": (
        lambda: graph(node("AveragePool", ["input"], ["output"], kernel_shape=[2, 2],
                           ceil_mode=-1)),
        "load: an AveragePool node: attribute 'ceil_mode' is -1, expected 0 or 1"),
    "pool-build": (lambda: graph(node("MaxPool", ["input"], ["output"], kernel_shape=[2, 2],
                                      pads=[2, 2, 2, 2])),
                   lambda: built("load: a MaxPool node: cannot build MaxPool2d: ",
                                 lambda: nn.MaxPool2d(2, padding=2))),
    "pad-reflect": (lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]),
                                  node("Pad", ["input", "p"], ["a"], mode="reflect"),
                                  node("MaxPool", ["a"], ["output"], kernel_shape=[2, 2])),
                    "load: a Pad node: only mode='constant' is supported, got 'reflect'"),
    "pad-axes-unknown-rank": (
        lambda: graph(pads([1, 1]), const("ax", np.array([2, 3], np.int64)),
                      node("Pad", ["input", "p", "", "ax"], ["a"]),
                      node("MaxPool", ["a"], ["output"], kernel_shape=[2, 2]), shape=None,
                      opset=18),
        "load: a Pad node: a Pad with axes needs a known input rank"),
    "pad-batch-axis": (lambda: graph(pads([1, 0, 0, 0, 0, 0, 0, 0]),
                                     node("Pad", ["input", "p"], ["a"]),
                                     node("MaxPool", ["a"], ["output"], kernel_shape=[2, 2])),
                       ("load: a Pad node: only non-negative padding of the height and width of a "
                        "4-D input is supported, got pads [1, 0, 0, 0, 0, 0, 0, 0]")),
    "pad-value": (lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]),
                                const("v", np.float32(1.0)),
                                node("Pad", ["input", "p", "v"], ["a"], name="pad"),
                                node("Conv", ["a", "w"], ["output"], name="conv"),
                                init={"w": W}),
                  ("load: node 'pad' (Pad): a Pad with value 1.0 before node 'conv' (Conv) is not "
                   "supported (expected 0.0)")),
    "pad-zero-before-max-pool": (
        lambda: graph(pads([0, 0, 1, 1, 0, 0, 1, 1]), node("Pad", ["input", "p"], ["a"]),
                      node("MaxPool", ["a"], ["output"], kernel_shape=[2, 2])),
        ("load: a Pad node: a Pad with value 0.0 before a MaxPool node is not supported "
         "(expected -inf)")),
    "global-pool-rank": (lambda: graph(node("GlobalAveragePool", ["input"], ["output"]),
                                       shape=("N", 1, 8)),
                         ("load: a GlobalAveragePool node: only 4-D (N, C, H, W) input is "
                          "supported")),
    "batch-norm-training": (
        lambda: graph(node("BatchNormalization", ["input", "s", "b", "m", "v"], ["output"],
                           training_mode=1), init={k: np.ones(1, np.float32) for k in "sbmv"}),
        ("load: a BatchNormalization node: only inference mode (one output, training_mode=0) is "
         "supported")),
    "batch-norm-spatial": (
        lambda: graph(node("BatchNormalization", ["input", "s", "b", "m", "v"], ["output"],
                           spatial=0), init={k: np.ones(1, np.float32) for k in "sbmv"}, opset=7),
        ("load: a BatchNormalization node: spatial=0 (statistics per activation, not per "
         "channel) is not supported")),
    "batch-norm-rank": (
        lambda: graph(node("BatchNormalization", ["input", "s", "b", "m", "v"], ["output"]),
                      init={k: np.ones(1, np.float32) for k in "sbmv"},
                      shape=("N", 1, 2, 2, 2)),
        "load: a BatchNormalization node: input of rank 5 is not supported"),
    "softmax-11-several-axes": (lambda: graph(node("Softmax", ["input"], ["output"], axis=1),
                                              opset=11),
                                ("load: a Softmax node: before opset 13, axis=1 on a rank-4 input "
                                 "normalizes over several axes, which is not supported")),
    "softmax-11-unknown-rank": (lambda: graph(node("LogSoftmax", ["input"], ["output"], axis=2),
                                              opset=11, shape=None),
                                ("load: a LogSoftmax node: before opset 13, axis=2 needs a known "
                                 "input rank")),
    "softmax-axis-range": (lambda: graph(node("Flatten", ["input"], ["f"]),
                                         node("Softmax", ["f"], ["output"], axis=7)),
                           ("load: a Softmax node: attribute 'axis' is 7, expected -2 to 1 for a "
                            "rank-2 input")),
    "log-softmax-axis-range": (lambda: graph(node("LogSoftmax", ["input"], ["output"], axis=-5)),
                               ("load: a LogSoftmax node: attribute 'axis' is -5, expected -4 to "
                                "3 for a rank-4 input")),
    "flatten-axis": (lambda: graph(node("Flatten", ["input"], ["output"], axis=2)),
                     ("load: a Flatten node: only axis=1 (keeping the batch axis) is supported, "
                      "got 2")),
    "reshape-computed-target": (
        lambda: graph(node("Relu", ["input"], ["t"]), node("Reshape", ["input", "t"], ["output"])),
        ("load: a Reshape node: it takes ['input', 't'], but numcnn reads only chains of layers, "
         "each taking the previous output 't' first and constants after it")),
    "reshape-allowzero": (
        lambda: graph(node("Reshape", ["input", "t"], ["output"], allowzero=1),
                      init={"t": np.array([0, -1], np.int64)}),
        ("load: a Reshape node: with allowzero=1 the 0 of the target shape [0, -1] is a size of "
         "zero, not the input's size, which is not supported")),
    "reshape-allowzero-flag": (
        lambda: graph(node("Reshape", ["input", "t"], ["output"], allowzero=3),
                      init={"t": np.array([0, -1], np.int64)}),
        "load: a Reshape node: attribute 'allowzero' is 3, expected 0 or 1"),
    "reshape-float-target": (
        lambda: graph(node("Reshape", ["input", "t"], ["output"]),
                      init={"t": np.array([0, -1], np.float32)}),
        "load: a Reshape node: the target shape must be a constant or computed from shapes"),
    "reshape-run-time-size": (
        lambda: graph(node("Shape", ["input"], ["s"]),
                      const("i", np.array([0, 2], np.int64)),
                      node("Gather", ["s", "i"], ["g"]),
                      node("Reshape", ["input", "g"], ["output"]), shape=("N", 1, "H", 8)),
        ("load: a Reshape node: the target shape [0, ('dim', 'input', 2)] depends on sizes known "
         "only at run time other than the batch size")),
    "reshape-not-flat": (
        lambda: graph(node("Reshape", ["input", "t"], ["output"]),
                      init={"t": np.array([0, 8, -1], np.int64)}),
        ("load: a Reshape node: only a reshape to (N, -1) (a flatten keeping the batch axis) is "
         "supported, got shape [0, 8, -1] for an input of shape [None, 1, 8, 8]")),
    "dropout-ratio": (lambda: graph(node("Dropout", ["input", "r"], ["output"]),
                                    init={"r": np.float32(1.5)}),
                      lambda: built("load: a Dropout node: cannot build Dropout: ",
                                    lambda: nn.Dropout(1.5))),
    # attributes of the wrong type, unknown, missing or of the wrong length: refused by name
    "attribute-strides-floats": (
        lambda: graph(node("Conv", ["input", "w"], ["output"], strides=[1.5, 1.5]),
                      init={"w": W}),
        "load: a Conv node: attribute 'strides' is of type FLOATS, expected INTS"),
    "attribute-strides-one-int": (
        lambda: graph(node("Conv", ["input", "w"], ["output"], strides=2), init={"w": W}),
        "load: a Conv node: attribute 'strides' is of type INT, expected INTS"),
    "attribute-alpha-string": (
        lambda: graph(node("LeakyRelu", ["input"], ["output"], alpha="x")),
        "load: a LeakyRelu node: attribute 'alpha' is of type STRING, expected FLOAT"),
    "attribute-unknown": (
        lambda: graph(node("Relu", ["input"], ["output"], slope=1.0)),
        ("load: a Relu node: has an attribute 'slope', which Relu of opset 17 does not take "
         "(it takes none)")),
    "attribute-required-missing": (
        lambda: graph(node("MaxPool", ["input"], ["output"])),
        "load: a MaxPool node: lacks the required attribute(s) kernel_shape"),
    "attribute-pads-length": (
        lambda: graph(node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1]), init={"w": W}),
        "load: a Conv node: pads [1, 1, 1] must have 4 values (begin and end of both axes)"),
    "attribute-pool-pads-length": (
        lambda: graph(node("AveragePool", ["input"], ["output"], kernel_shape=[2, 2],
                           pads=[1, 1])),
        "load: an AveragePool node: pads [1, 1] must have 4 values (begin and end of both axes)"),
    "dropout-training": (lambda: graph(node("Dropout", ["input", "r", "t"], ["output"]),
                                       init={"r": np.float32(0.5), "t": np.bool_(True)}),
                         "load: a Dropout node: training_mode=True is not supported"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_the_node_and_the_reason(case):
    build, message = REFUSALS[case]
    if callable(message):                        # it quotes the error of a layer's constructor
        message = message()
    with pytest.raises(nco.OnnxImportError) as info:
        nco.load(build())
    assert str(info.value) == message


def test_source_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"^load: missing\.onnx does not exist$"):
        nco.load("missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff not protobuf")
    with pytest.raises(nco.OnnxImportError, match=rf"^load: {junk} is not a readable ONNX file: "):
        nco.load(junk)
    with pytest.raises(IsADirectoryError, match=rf"^load: {tmp_path} is a directory; expected "
                                                r"an \.onnx file$"):
        nco.load(tmp_path)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")                 # protobuf reads it as a model with nothing set
    with pytest.raises(nco.OnnxImportError, match=rf"^load: {empty} is empty; expected an ONNX "
                                                  r"model$"):
        nco.load(empty)
    with pytest.raises(nco.OnnxImportError, match=r"^load: the byte string given holds no graph; "
                                                  r"expected an ONNX model$"):
        nco.load(onnx.ModelProto(ir_version=7).SerializeToString())
    with pytest.raises(nco.OnnxImportError, match=r"^load: the byte string given is not a "
                                                  r"readable ONNX model: "):
        nco.load(b"\xff not protobuf")
    with pytest.raises(TypeError, match=r"^load: expected a path, bytes or an onnx\.ModelProto, "
                                        r"got int$"):
        nco.load(3)
    monkeypatch.setitem(sys.modules, "onnx", None)               # as if it were not installed
    with pytest.raises(ImportError, match=r"^ONNX import needs the onnx package: pip install "
                                          r"'numcnn\[onnx\]' \(or pip install onnx\)$"):
        nco.load(b"")


def test_supported_ops_are_the_ones_load_reads():
    """Every name of SUPPORTED_OPS has a converter or is evaluated as a constant or shape."""
    from numcnn.onnx import _converters, _shapes

    handled = set(_converters.CONVERTERS) | set(_shapes.SHAPE_OPS) | {"Constant"}
    assert handled == set(nco.SUPPORTED_OPS)


# --- what loads, checked against onnxruntime ---------------------------------------------------

def _same_as_onnxruntime(proto, layers: list[str], shape=(3, 1, 8, 8)) -> nn.Sequential:
    model = nco.load(proto)
    assert [type(m).__name__ for m in model] == layers
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(model(x).data, run_ort(proto, x), rtol=1e-5, atol=1e-5)
    return model


def test_pad_folds_into_conv_and_pools():
    proto = graph(pads([0, 0, 1, 1, 0, 0, 1, 1]), node("Pad", ["input", "p"], ["a"]),
                  node("Conv", ["a", "w"], ["c"], pads=[1, 0, 1, 0]),
                  pads([0, 0, 1, 1, 0, 0, 1, 1], "q"), const("v", np.float32(-np.inf)),
                  node("Pad", ["c", "q", "v"], ["d"]),
                  node("MaxPool", ["d"], ["e"], kernel_shape=[3, 3], strides=[2, 2]),
                  pads([0, 0, 1, 1, 0, 0, 1, 1], "r"), node("Pad", ["e", "r"], ["f"]),
                  node("AveragePool", ["f"], ["output"], kernel_shape=[3, 3], strides=[2, 2],
                       pads=[0, 0, 1, 1]),
                  init={"w": W})
    model = _same_as_onnxruntime(proto, ["Conv2d", "MaxPool2d", "AvgPool2d"])
    assert model[0].padding == (2, 1)
    assert model[1].padding == (1, 1) and not model[1].ceil_mode
    assert model[2].padding == (1, 1) and model[2].ceil_mode and model[2].count_include_pad


def test_opset_10_pad_attributes_and_asymmetric_pool_pads():
    proto = graph(node("Pad", ["input"], ["a"], pads=[0, 0, 1, 1, 0, 0, 1, 1],
                       value=float(np.finfo(np.float32).min)),
                  node("MaxPool", ["a"], ["b"], kernel_shape=[2, 2], strides=[2, 2]),
                  node("AveragePool", ["b"], ["output"], kernel_shape=[2, 2], strides=[2, 2],
                       pads=[0, 0, 1, 1]), opset=10)
    model = _same_as_onnxruntime(proto, ["MaxPool2d", "AvgPool2d"])
    assert model[0].padding == (1, 1) and model[1].ceil_mode


def test_pad_with_axes():
    proto = graph(pads([1, 2, 1, 2]), const("ax", np.array([-2, -1], np.int64)),
                  node("Pad", ["input", "p", "", "ax"], ["a"]),
                  node("Conv", ["a", "w"], ["output"]), init={"w": W}, opset=18)
    model = _same_as_onnxruntime(proto, ["Conv2d"])
    assert model[0].padding == (1, 2)


def test_conv_auto_pad_and_a_bias_add_of_a_constant_node():
    bias = np.array([0.5, -1.0], np.float32).reshape(1, 2, 1, 1)
    proto = graph(node("Conv", ["input", "w"], ["a"], auto_pad="SAME_UPPER"),
                  const("b", bias), node("Add", ["a", "b"], ["c"]),
                  node("Conv", ["c", "w2"], ["output"], auto_pad="VALID"),
                  init={"w": W, "w2": np.ones((1, 2, 3, 3), np.float32)})
    model = _same_as_onnxruntime(proto, ["Conv2d", "Conv2d"])
    assert model[0].padding == "same" and model[1].padding == (0, 0)
    np.testing.assert_array_equal(model[0].bias.data, bias.reshape(-1))
    assert model[1].bias is None


def test_matmul_bias_and_scalar_gemm_bias():
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    proto = graph(node("MatMul", ["input", "w"], ["a"]), node("Add", ["b", "a"], ["c"]),
                  node("Gemm", ["c", "w2", "c2"], ["output"], transB=1, beta=0.5),
                  init={"w": w, "b": np.ones((1, 3), np.float32),
                        "w2": np.ones((2, 3), np.float32), "c2": np.float32(2.0)},
                  shape=("N", 4))
    model = _same_as_onnxruntime(proto, ["Linear", "Linear"], shape=(3, 4))
    np.testing.assert_array_equal(model[1].bias.data, [1.0, 1.0])


def test_shape_computations_with_slice_squeeze_and_cast():
    """The target of Reshape computed from Shape by Slice, Squeeze, Unsqueeze, Cast, Concat."""
    proto = graph(node("Shape", ["input"], ["s"]),
                  const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64)),
                  node("Slice", ["s", "zero", "one"], ["n1"]),
                  node("Squeeze", ["n1", "zero"], ["n"]),
                  node("Unsqueeze", ["n", "zero"], ["n2"]),
                  node("Cast", ["n2"], ["n3"], to=onnx.TensorProto.INT64),
                  const("rest", np.array([-1], np.int64)),
                  node("Concat", ["n3", "rest"], ["target"], axis=0),
                  node("Identity", ["target"], ["t2"]),
                  node("Shape", ["input"], ["tail"], start=1),
                  node("Reshape", ["input", "t2"], ["output"]))
    _same_as_onnxruntime(proto, ["Flatten"])


def test_activations_and_opset_11_softmax():
    proto = graph(node("LeakyRelu", ["input"], ["a"], alpha=0.2),
                  node("Flatten", ["a"], ["b"], axis=-3),
                  node("Identity", ["b"], ["c"]),
                  node("Dropout", ["c"], ["d"], ratio=0.25),
                  node("Softmax", ["d"], ["output"], axis=1), opset=11)
    model = _same_as_onnxruntime(proto, ["LeakyReLU", "Flatten", "Dropout", "Softmax"])
    assert model[0].negative_slope == 0.2 and model[2].p == 0.25 and model[1 + 2].dim == 1


def test_batch_norm_1d_and_global_pool():
    s, b, m, v = (np.array(x, np.float32) for x in ([1.5], [0.1], [0.2], [2.0]))
    proto = graph(node("GlobalAveragePool", ["input"], ["a"]),
                  node("Flatten", ["a"], ["f"]),
                  node("BatchNormalization", ["f", "s", "b", "m", "v"], ["output"],
                       epsilon=1e-3, momentum=0.8),
                  init={"s": s, "b": b, "m": m, "v": v})
    model = _same_as_onnxruntime(proto, ["AdaptiveAvgPool2d", "Flatten", "BatchNorm1d"])
    assert model[2].eps == 1e-3 and model[2].momentum == pytest.approx(0.2)


def test_float64_weights_give_a_float64_model():
    proto = graph(node("Conv", ["input", "w"], ["output"]), init={"w": W.astype(np.float64)})
    assert nco.load(proto)[0].weight.dtype == np.float64


def test_conv_transpose_bias_add_valid_pads_and_constant_identities():
    proto = graph(node("Identity", ["w"], ["w1"]),
                  node("ConvTranspose", ["input", "w1"], ["a"], auto_pad="VALID"),
                  const("b", np.array([0.5, -0.5], np.float32).reshape(2, 1, 1)),
                  node("Add", ["a", "b"], ["c"]),
                  node("MaxPool", ["c"], ["d"], kernel_shape=[2, 2], strides=[2, 2],
                       auto_pad="VALID"),
                  node("Constant", [], ["t"], value_ints=[-1, 2 * 5 * 5]),
                  node("Reshape", ["d", "t"], ["e"]),
                  node("Constant", [], ["scale"], value_floats=[0.5]),
                  node("Gemm", ["e", "m", "scale"], ["output"]),
                  init={"w": W.reshape(1, 2, 3, 3), "m": np.ones((2 * 5 * 5, 3), np.float32)})
    model = _same_as_onnxruntime(proto, ["ConvTranspose2d", "MaxPool2d", "Flatten", "Linear"])
    np.testing.assert_array_equal(model[0].bias.data, [0.5, -0.5])
    np.testing.assert_array_equal(model[3].bias.data, [0.5] * 3)


_FLATTEN_64 = node("Flatten", ["input"], ["f"])
WEIGHT_REFUSALS = {
    "gemm-weight-3d": (
        lambda: graph(_FLATTEN_64, node("Gemm", ["f", "w"], ["output"], transB=1),
                      init={"w": np.ones((3, 64, 1), np.float32)}),
        ("load: a Gemm node: the weight of shape (3, 64, 1) does not fit the Linear it "
         "describes (weight of shape (3, 64))")),
    "conv-bias-size": (
        lambda: graph(node("Conv", ["input", "w", "b"], ["output"]),
                      init={"w": W, "b": np.ones(5, np.float32)}),
        ("load: a Conv node: the bias of shape (5,) does not fit the 2 output channels of the "
         "Conv2d")),
    "slice-step-0": (
        lambda: graph(node("Shape", ["input"], ["s"]), const("a", np.array([0], np.int64)),
                      const("b", np.array([1], np.int64)), const("ax", np.array([0], np.int64)),
                      const("st", np.array([0], np.int64)),
                      node("Slice", ["s", "a", "b", "ax", "st"], ["n"]),
                      const("r", np.array([-1], np.int64)),
                      node("Concat", ["n", "r"], ["t"], axis=0),
                      node("Reshape", ["input", "t"], ["output"])),
        "load: a Slice node: this shape computation is not supported"),
}


@pytest.mark.parametrize("case", sorted(WEIGHT_REFUSALS))
def test_weights_of_the_wrong_shape_and_a_zero_slice_step_are_refused_by_node(case):
    build, message = WEIGHT_REFUSALS[case]
    with pytest.raises(nco.OnnxImportError) as info:
        nco.load(build())
    assert str(info.value) == message


def test_a_symlink_loop_or_a_device_is_refused_by_name(tmp_path):
    loop = tmp_path / "loop.onnx"
    loop.symlink_to(loop)
    with pytest.raises(OSError, match=rf"^\[Errno \d+\] load: cannot open {loop}: Too many "
                                      r"levels of symbolic links$"):
        nco.load(loop)
    with pytest.raises(nco.OnnxImportError, match=r"^load: /dev/null is not a regular file; "
                                                  r"expected an \.onnx file$"):
        nco.load("/dev/null")
