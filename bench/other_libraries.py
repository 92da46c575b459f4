"""numcnn against MyGrad, another autograd library on NumPy alone, on the LeNet convs."""
from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import numpy as np

from bench import numcnn_cases
from bench.cases import LENET_CONV_CASES, Conv
from bench.timing import Runner, Timer


class MygradInputs(NamedTuple):
    """MyGrad tensors of a conv case, float32 like numcnn's, and the upstream gradient."""
    x: Any
    w: Any
    b: Any
    gy: np.ndarray


def mygrad_conv2d(x: Any, w: Any, b: Any, stride: int, padding: int) -> Any:
    """MyGrad's conv with the bias added after it (numcnn's conv2d adds the bias itself)."""
    from mygrad.nnet.layers import conv_nd

    return conv_nd(x, w, stride=stride, padding=padding) + b.reshape(1, -1, 1, 1)


def mygrad_inputs(conv: Conv) -> MygradInputs:
    import mygrad as mg

    rng = np.random.default_rng(0)
    return MygradInputs(
        mg.tensor(rng.standard_normal((conv.N, conv.C_in, conv.H, conv.H), dtype=np.float32)),
        mg.tensor(rng.standard_normal((conv.C_out, conv.C_in, conv.k, conv.k),
                                      dtype=np.float32) * 0.1),
        mg.tensor(np.zeros(conv.C_out, np.float32)),
        np.ones(conv.output_shape(), np.float32))


def mygrad_conv(conv: Conv) -> Runner:
    """The fwd+bwd conv case in MyGrad, inputs and gy built outside the runner. MyGrad replaces
    the gradients on each backward, so repeated runs do the same work without clearing them."""
    x, w, b, gy = mygrad_inputs(conv)

    def run() -> None:
        mygrad_conv2d(x, w, b, conv.stride, conv.padding).backward(gy)

    return run


def run_other_libraries(timer: Timer, repeat: int) -> dict[str, Any] | None:
    """The MyGrad table; None (and a line saying so) where MyGrad is not installed."""
    try:
        import mygrad
    except ImportError:
        print("\nmygrad is not installed (pip install 'numcnn[bench]'): skipping that comparison")
        return None
    print(f"\n{'fwd+bwd vs MyGrad ' + mygrad.__version__:<52} {'numcnn ms':>9} {'mygrad ms':>9} "
          f"{'numcnn speedup (x)':>18}")
    rows = []
    for name, conv in LENET_CONV_CASES:
        nc_t, mg_t = timer.alternate([partial(numcnn_cases.conv, conv, True),
                                      partial(mygrad_conv, conv)], max(3, repeat))
        row = {"case": name + " fwd+bwd", "numcnn_ms": nc_t.median_ms,
               "numcnn_best_ms": nc_t.best_ms, "mygrad_ms": mg_t.median_ms,
               "mygrad_best_ms": mg_t.best_ms, "speedup": mg_t.median_ms / nc_t.median_ms}
        rows.append(row)
        print(f"{row['case']:<52} {row['numcnn_ms']:9.2f} {row['mygrad_ms']:9.2f} "
              f"{row['speedup']:18.2f}", flush=True)
    return {"mygrad": mygrad.__version__, "rows": rows}
