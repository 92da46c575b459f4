"""The benchmark's own machinery: memory probes, the MyGrad comparison, the MNIST epoch, JSON."""
import json

import numpy as np
import pytest

import numcnn as nc
import numcnn.functional as F
from numcnn import bench
from numcnn.ops import engine

# big enough that its buffers need fresh pages (above glibc's mmap threshold), still fast
SMALL_CASE = (8, 4, 8, 32, 3, 1, 1)


@pytest.mark.parametrize("library", ["numcnn", "torch"])
def test_memory_probe_measures_a_positive_peak(library):
    if library == "torch":
        pytest.importorskip("torch")
    result = bench.memory_probe(library, SMALL_CASE, threads=1)
    assert result["library"] == library
    assert result["method"] in (bench.METHOD_HWM, bench.METHOD_MAXRSS)
    assert 0 < result["extra_mib"] < 200
    assert result["peak_mib"] == pytest.approx(result["before_mib"] + result["extra_mib"])


def test_memory_budget_reaches_the_probe_and_lowers_the_peak():
    case = (16, 32, 16, 28, 3, 1, 1)  # im2col columns of 7 MiB: one chunk by default
    default = bench.memory_probe("numcnn", case)
    small = bench.memory_probe("numcnn", case, budget_mib=0.25)
    assert default["cols_budget_bytes"] == engine.COLS_BUDGET_BYTES
    assert small["cols_budget_bytes"] == 2**18
    assert small["extra_mib"] < 0.6 * default["extra_mib"]


def test_cols_budget_sets_and_restores_the_constant():
    old = engine.COLS_BUDGET_BYTES
    with bench.cols_budget(2):
        assert engine.COLS_BUDGET_BYTES == 2 * 2**20
    assert engine.COLS_BUDGET_BYTES == old
    with bench.cols_budget(None):
        assert engine.COLS_BUDGET_BYTES == old


def test_memory_budget_applies_to_the_numcnn_timings(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_cases(repeat, quick, with_torch, **kwargs):
        seen["cases"] = engine.COLS_BUDGET_BYTES
        return {"gemm_peak_gflops": 1.0, "blas": "fake", "rows": []}

    def fake_other(repeat, **kwargs):
        seen["other"] = engine.COLS_BUDGET_BYTES

    monkeypatch.setattr(bench, "run_cases", fake_cases)
    monkeypatch.setattr(bench, "run_other_libraries", fake_other)
    monkeypatch.setattr(bench, "naive_speedup", lambda: {
        "case": "fake", "naive_ms": 2.0, "vectorized_ms": 1.0, "speedup": 2.0,
        "naive_ns_per_multiply_add": 1.0, "naive_lenet_epoch_conv_hours": 1.0})
    old = engine.COLS_BUDGET_BYTES
    out = tmp_path / "b.json"
    assert bench.main(["--memory-budget", "0.5", "--no-memory", "--no-epoch",
                       "--json", str(out)]) == 0
    assert seen == {"cases": 2**19, "other": 2**19}
    assert engine.COLS_BUDGET_BYTES == old
    result = json.loads(out.read_text())
    assert result["memory"] is None and result["epoch"] is None
    assert "im2col budget: 0.5 MiB" in capsys.readouterr().out


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_mygrad_computes_the_same_conv_as_numcnn(stride, padding):
    mg = pytest.importorskip("mygrad")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 9, 9))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    Ho = (9 + 2 * padding - 3) // stride + 1
    gy = rng.standard_normal((3, 4, Ho, Ho))

    mx, mw, mb = mg.tensor(x), mg.tensor(w), mg.tensor(b)
    my = bench.mygrad_conv2d(mx, mw, mb, stride, padding)
    my.backward(gy)
    nx, nw, nb = (nc.tensor(a, requires_grad=True) for a in (x, w, b))
    ny = F.conv2d(nx, nw, nb, stride=stride, padding=padding)
    ny.backward(gy)

    for ours, theirs in [(ny.data, my.data), (nx.grad, mx.grad), (nw.grad, mw.grad),
                         (nb.grad, mb.grad)]:
        assert ours.dtype == theirs.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_mygrad_runner_is_float32():
    pytest.importorskip("mygrad")
    run = bench.mygrad_conv(2, 1, 2, 8, 3, 1, 0)
    run()
    run()  # grads are replaced, not accumulated, so repeated runs do the same work


def test_mnist_epoch_on_a_few_images():
    try:
        row = bench.mnist_epoch(limit=128)
    except FileNotFoundError:
        pytest.skip("MNIST is not bundled in this checkout")
    assert row["images"] == 128
    assert row["train_seconds"] > 0 and row["images_per_second"] > 0
    assert row["total_seconds"] >= row["train_seconds"]
    assert 0 <= row["test_acc"] <= 1
    assert "128 images" in bench.format_epoch_row(row)


def test_format_rows_without_torch():
    row = {"case": "conv x", "numcnn_ms": 1.5, "torch_ms": None, "ratio": None}
    line = bench.format_row(row)
    assert line.startswith("conv x") and "1.50" in line and line.split()[-4:] == ["-"] * 4
    mem = {"case": "conv x", "numcnn_mib": 3.25, "torch_mib": None, "ratio": None,
           "method": bench.METHOD_HWM}
    line = bench.format_memory_row(mem)
    assert "3.2" in line and line.split()[-3:] == ["-", "-", bench.METHOD_HWM]
    failed = {"case": "conv x", "numcnn_mib": None, "torch_mib": None, "ratio": None,
              "error": "probe failed"}
    assert "(probe failed)" in bench.format_memory_row(failed)


def test_quick_run_writes_the_new_sections(monkeypatch, tmp_path, capsys):
    # the machinery, not the numbers: skip the GEMM peak, the pools and the pauses
    monkeypatch.setattr(bench, "gemm_peak_gflops", lambda: 100.0)
    monkeypatch.setattr(bench, "POOL_CASES", [])
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(bench, "WARMUP_SECONDS", 0.0)
    monkeypatch.setattr(bench, "MIN_BLOCK_SECONDS", 0.0)
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--repeat", "1", "--no-epoch", "--no-torch",
                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"rows", "memory", "other_libraries", "epoch", "naive"} <= set(result)
    assert result["epoch"] is None
    memory = result["memory"]["rows"]
    assert [r["case"] for r in memory] == [name + " fwd+bwd" for name, *_ in bench.CONV_CASES[:2]]
    assert all(r["numcnn_mib"] > 0 and r["torch_mib"] is None for r in memory)
    printed = capsys.readouterr().out
    assert "numcnn MiB" in printed
    other = result["other_libraries"]
    if other is None:
        assert "mygrad is not installed" in printed
    else:
        assert len(other["rows"]) == 2
        assert all(r["speedup"] == pytest.approx(r["mygrad_ms"] / r["numcnn_ms"])
                   for r in other["rows"])
        assert "numcnn speedup (x)" in printed


def test_peak_falls_back_to_ru_maxrss(monkeypatch):
    monkeypatch.setattr(bench, "_reset_peak", lambda: False)
    result = bench.measure_peak_memory("numcnn", (2, 1, 2, 8, 3, 1, 0), warmup_batch=0)
    assert result["method"] == bench.METHOD_MAXRSS
    assert result["extra_mib"] >= 0 and result["peak_mib"] >= result["before_mib"]


class FakeClock:
    """perf_counter that advances by ``step`` seconds per reading: no sleeps, no wall clock."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_time_block_warms_up_for_calls_and_for_time(monkeypatch):
    calls = []
    monkeypatch.setattr(bench.time, "perf_counter", FakeClock(0.001))
    timing = bench.time_block(lambda: calls.append(1), repeat=3, warmup=2, warmup_seconds=0.0)
    assert len(calls) == 5 and timing.best_ms <= timing.median_ms
    calls.clear()
    # each reading advances 10 ms: a 50 ms warm-up takes several calls beyond the one asked for
    monkeypatch.setattr(bench.time, "perf_counter", FakeClock(0.01))
    bench.time_block(lambda: calls.append(1), repeat=1, warmup=1, warmup_seconds=0.05)
    assert len(calls) >= 1 + 3


def test_alternate_blocks_reports_each_librarys_fastest_block(monkeypatch):
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: None)
    medians = iter([5.0, 9.0, 3.0, 8.0, 4.0, 7.0])                     # a b a b a b

    def fake_block(fn, reps, min_seconds=0.0):
        m = next(medians)
        return bench.Timing(m, m - 1)

    monkeypatch.setattr(bench, "time_block", fake_block)
    a, b = bench.alternate_blocks([lambda: None, lambda: None], reps=1, rounds=3, pause=0.0)
    assert (a.median_ms, a.best_ms) == (3.0, 2.0)
    assert (b.median_ms, b.best_ms) == (7.0, 6.0)


def _rows(ratios, lenet=(4.0, 3.0), stem=0.9, loaded=False):
    rows = [{"case": name + " fwd+bwd", "ratio": r, "loaded": loaded}
            for (name, *_), r in zip(bench.CONV_CASES, ratios + [stem])]
    for batch, numcnn_ms in zip((64, 256), lenet):
        rows.append({"case": f"LeNet-5 train step batch {batch}", "numcnn_ms": numcnn_ms,
                     "torch_ms": 3.0, "loaded": loaded})
    rows.append({"case": bench.TRANSPOSE_CASE[0] + " fwd+bwd", "ratio": 1.6, "loaded": loaded})
    return rows


def test_target_rows_compute_each_target_from_the_table():
    memory = {"rows": [{"case": bench.CONV_CASES[2][0] + " fwd+bwd", "ratio": 0.8}]}
    targets = bench.target_rows({"rows": _rows([1.0, 2.0, 1.0, 1.0]), "memory": memory})
    values = {t["target"]: t for t in targets}
    step64 = values["LeNet-5 step B64: numcnn img/s / torch img/s"]
    assert step64["value"] == pytest.approx(0.75) and step64["met"] is True
    step256 = values["LeNet-5 step B256: numcnn img/s / torch img/s"]
    assert step256["value"] == pytest.approx(1.0) and step256["met"] is True
    geomean = values["conv fwd+bwd time ratio, geometric mean of the 4 cases"]
    assert geomean["value"] == pytest.approx(2 ** 0.25) and geomean["met"] is True
    worst = values["conv fwd+bwd time ratio, worst of the 4 cases"]
    assert worst["value"] == 2.0 and worst["met"] is False
    assert values["ResNet stem fwd+bwd time ratio"]["met"] is True
    assert values["peak extra memory conv 32->64 k3, numcnn / torch"]["value"] == 0.8
    transpose = values["conv_transpose2d decoder layer fwd+bwd time ratio"]
    assert transpose["value"] == 1.6 and transpose["met"] is False
    assert "NOT met" in bench.format_target_row(worst)


def test_targets_not_measured_and_loaded_hosts_are_said():
    targets = bench.target_rows({"rows": _rows([1.0, 1.0, 1.0, None], loaded=True)})
    geomean = next(t for t in targets if "geometric" in t["target"])
    assert geomean["value"] is None and "not measured" in bench.format_target_row(geomean)
    step = targets[0]
    assert step["loaded"] and "(loaded host)" in bench.format_target_row(step)


def test_rows_above_the_load_limit_are_marked():
    row = {"case": "conv x", "numcnn_ms": 1.0, "torch_ms": 2.0, "ratio": 0.5,
           "load": bench.LOADED + 0.5, "loaded": True}
    assert bench.format_row(row).endswith("loaded")
    assert not bench.format_row(dict(row, load=0.2, loaded=False)).endswith("loaded")


def test_naive_extrapolation_counts_the_lenet_epoch_multiply_adds():
    conv1 = 6 * 28 * 28 * 25                                           # per image, forward
    conv2 = 16 * 10 * 10 * 150
    assert bench.LENET_EPOCH_CONV_MACS == 60_000 * (2 * conv1 + 3 * conv2)
    line = bench.format_naive({"case": "c", "naive_ms": 100.0, "vectorized_ms": 0.2,
                               "speedup": 500.0, "naive_ns_per_multiply_add": 590.0,
                               "naive_lenet_epoch_conv_hours": 9.4})
    assert "500x" in line and "590 ns per multiply-add" in line and "about 9 h" in line


def test_alternate_blocks_takes_turns_and_combines_per_library(monkeypatch):
    monkeypatch.setattr(bench, "MIN_BLOCK_SECONDS", 0.0)
    monkeypatch.setattr(bench, "WARMUP_SECONDS", 0.0)
    order = []

    def maker(tag):
        def make():
            order.append(tag)
            return lambda: None
        return make

    a, b, none = bench.alternate_blocks([maker("a"), maker("b"), None], reps=2, rounds=3,
                                        pause=0.0)
    assert order == ["a", "b"] * 3 and none is None
    assert a.best_ms <= a.median_ms and b.best_ms <= b.median_ms


def test_conv_transpose_runners_build_the_decoder_layer():
    """Both runners run the decoder case forward and backward (the shapes agree with PyTorch's
    output-size rule: 14x14 -> 28x28)."""
    pytest.importorskip("torch")
    cfg = (2,) + bench.TRANSPOSE_CASE[2:]                                # a batch of 2
    bench.numcnn_conv_transpose(*cfg, True)()
    bench.torch_conv_transpose(*cfg, True)()
    H, k, s, p = cfg[3:]
    assert (H - 1) * s - 2 * p + k == 28
