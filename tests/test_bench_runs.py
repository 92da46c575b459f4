"""The benchmark harness's runs (bench/), on a fake clock: how it times, the rows it makes, the
tables it runs in order. Nothing here is timed for real; the runners that run are real but tiny
or few."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from bench import command, memory, other_libraries, speed, suite
from bench.cases import LENET_CONV_CASES, Conv
from bench.epoch import format_epoch_row, mnist_epoch
from bench.naive import LENET_EPOCH_CONV_MACS, MACS, W_SHAPE, X_SHAPE, naive_speedup
from bench.timing import LOADED, PAUSE_SECONDS, Timer, Timing

import numcnn.ops
from numcnn.ops import engine


class FakeClock:
    """perf_counter that advances by ``step`` seconds per reading, and by what a fake runner
    spends (:meth:`spend`): no sleeps, no wall clock."""

    def __init__(self, step: float = 0.0):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


def fake_timer(clock: FakeClock | None = None, load=lambda: 0.5, **settings) -> Timer:
    """A Timer on ``clock`` (1 ms per reading by default) whose pauses sleep nothing and whose
    blocks last no minimum time (override with ``settings``)."""
    settings = {"block_seconds": 0.0, "warmup_seconds": 0.0, **settings}
    return Timer(clock=FakeClock(0.001) if clock is None else clock, sleep=lambda s: None,
                 load=load, **settings)


def runner_taking(clock: FakeClock, milliseconds, calls: list | None = None):
    """A runner whose successive calls take ``milliseconds`` (cycling) on ``clock``."""
    count = itertools.count()

    def run():
        i = next(count)
        if calls is not None:
            calls.append(i)
        clock.spend(milliseconds[i % len(milliseconds)] / 1e3)

    return run


# --- Timer.block: warm-up, then runs for at least `repeat` and `min_seconds` ------------------

def test_block_warms_up_for_calls_then_for_time():
    calls = []
    timing = fake_timer(FakeClock(0.001)).block(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 2 + 3
    assert timing.median_ms == timing.best_ms == pytest.approx(1.0)  # one reading apart
    calls.clear()
    # 10 ms per reading: a 50 ms warm-up takes 5 calls although 1 is asked for
    fake_timer(FakeClock(0.01)).block(lambda: calls.append(1), repeat=1, warmup=1,
                                      warmup_seconds=0.05)
    assert len(calls) == 5 + 1


def test_block_gives_the_median_and_the_best_run_and_times_for_min_seconds():
    clock = FakeClock()
    calls = []
    run = runner_taking(clock, [3, 1, 2], calls)
    timing = fake_timer(clock).block(run, repeat=3, warmup=0, warmup_seconds=0)
    assert (timing.median_ms, timing.best_ms) == pytest.approx((2.0, 1.0))
    calls.clear()
    # one run asked for, but 9.5 ms of runs: 3 + 1 + 2 + 3 + 1
    fake_timer(clock).block(run, repeat=1, warmup=0, warmup_seconds=0, min_seconds=0.0095)
    assert len(calls) == 5


# --- Timer.alternate: A B A B A B, each library's fastest block --------------------------------

def test_alternate_takes_turns_and_keeps_each_librarys_fastest_block():
    clock = FakeClock()
    order, pauses = [], []
    # per block: two warm-up calls (0 ms), then three timed runs
    blocks = {"a": [[5, 4, 6], [3, 2, 4], [4, 3, 5]], "b": [[9, 8, 10], [8, 6, 9], [7, 7, 7]]}

    def maker(tag):
        def make():
            order.append(tag)
            return runner_taking(clock, [0, 0] + blocks[tag][order.count(tag) - 1])
        return make

    timer = Timer(rounds=3, block_seconds=0.0, warmup_seconds=0.0, clock=clock,
                  sleep=pauses.append)
    a, b = timer.alternate([maker("a"), maker("b")], reps=3)
    assert order == ["a", "b"] * 3
    assert pauses == [PAUSE_SECONDS] * 6
    assert (a.median_ms, a.best_ms) == pytest.approx((3.0, 2.0))  # block 2's median and best
    assert (b.median_ms, b.best_ms) == pytest.approx((7.0, 6.0))  # block 3's median, block 2's best


# --- the speed table -----------------------------------------------------------------------------

class FakeTorch:
    """Stands in for bench.torch_cases: its conv takes 1 ms more per run than numcnn's."""

    def __init__(self, clock: FakeClock):
        self.clock = clock

    def conv(self, conv: Conv, backward: bool):
        return lambda: self.clock.spend(0.001)


TINY = Conv(2, 1, 2, 8, 3, 1, 0)


@pytest.mark.parametrize("loads, load, loaded", [
    ([0.5, LOADED + 0.5], LOADED + 0.5, True),   # the higher of the readings before and after
    ([LOADED + 0.5, 0.5], LOADED + 0.5, True),
    ([1.0, LOADED], LOADED, False),              # marked above the limit only
    ([None, None], None, False),                 # no load average on this platform
])
def test_rows_carry_the_load_and_are_marked_above_the_limit(capsys, loads, load, loaded):
    clock = FakeClock(0.001)
    readings = iter(loads)
    table = speed.SpeedTable(fake_timer(clock, load=lambda: next(readings), rounds=1),
                             peak_gflops=10.0, torch=FakeTorch(clock))
    row = table.measure("conv tiny fwd", 1e6, 1, "conv", TINY, False)
    assert row["load"] == load and row["loaded"] is loaded
    assert row["numcnn_ms"] == pytest.approx(1.0)  # one reading after the other
    assert row["torch_ms"] == pytest.approx(2.0) and row["ratio"] == pytest.approx(0.5)
    assert row["gflops"] == pytest.approx(1.0) and row["peak_share"] == pytest.approx(0.1)
    printed = capsys.readouterr().out.strip()
    assert printed == speed.format_row(row) and printed.endswith("loaded") is loaded


def test_rows_without_torch_have_no_torch_figures(capsys):
    table = speed.SpeedTable(fake_timer(rounds=1), peak_gflops=10.0, torch=None)
    row = table.measure("conv tiny fwd+bwd", 0, 1, "conv", TINY, True)
    assert row["torch_ms"] is None and row["ratio"] is None and "gflops" not in row
    line = speed.format_row(row)
    assert line.startswith("conv tiny fwd+bwd") and line.split()[-5:-1] == ["-"] * 4


# --- the naive loops -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ScriptedTimer(Timer):
    """block() runs ``fn`` once and returns the next of ``script`` (recording ``repeat``)."""
    script: list = field(default_factory=list)
    repeats: list = field(default_factory=list)

    def block(self, fn, repeat, **kwargs):
        fn()
        self.repeats.append(repeat)
        return self.script.pop(0)


def test_naive_speedup_runs_both_sides_and_extrapolates_to_a_lenet_epoch():
    timer = ScriptedTimer(script=[Timing(100.0, 90.0), Timing(0.2, 0.1)])
    result = naive_speedup(timer)
    assert timer.repeats == [3, 20]  # the loops are slow: 3 runs of them, 20 of the kernel
    assert result["naive_ms"] == 100.0 and result["vectorized_ms"] == 0.2
    assert result["speedup"] == pytest.approx(500.0)
    # forward, gX and gW each make one multiply-add per output element and kernel tap
    out = numcnn.ops.conv2d_forward(np.zeros(X_SHAPE), np.zeros(W_SHAPE))
    assert MACS == 3 * out.size * int(np.prod(W_SHAPE[1:]))
    assert result["naive_ns_per_multiply_add"] == pytest.approx(100e6 / MACS)
    epoch_seconds = result["naive_ns_per_multiply_add"] * 1e-9 * LENET_EPOCH_CONV_MACS
    assert result["naive_lenet_epoch_conv_hours"] == pytest.approx(epoch_seconds / 3600)


# --- one MNIST epoch -----------------------------------------------------------------------------

def test_mnist_epoch_on_a_few_images():
    try:
        row = mnist_epoch(limit=128, clock=FakeClock(0.25))
    except FileNotFoundError:
        pytest.skip("MNIST is not bundled in this checkout")
    assert row["images"] == 128
    assert row["total_seconds"] == 0.25  # the clock read before and after the run
    assert row["images_per_second"] * row["train_seconds"] == pytest.approx(128)
    assert 0 <= row["test_acc"] <= 1
    assert "128 images" in format_epoch_row(row)


# --- the whole run -------------------------------------------------------------------------------

def _fake_probe(seen: list):
    def probe(library, conv, budget_mib=None, threads=None, **kwargs):
        seen.append((library, conv, budget_mib, engine.COLS_BUDGET_BYTES))
        return {"extra_mib": 3.0, "method": "VmHWM", "cols_budget_bytes": 2**20}
    return probe


NAIVE = {"case": "fake", "naive_ms": 2.0, "vectorized_ms": 1.0, "speedup": 2.0,
         "naive_ns_per_multiply_add": 1.0, "naive_lenet_epoch_conv_hours": 1.0}


def test_a_quick_run_makes_every_table_in_order(monkeypatch, capsys):
    """numcnn's runners run for real (once per block); what is tested on its own elsewhere is
    faked: the GEMM peak (a 2048^3 product), the probes, MyGrad's slow convs, the loops."""
    monkeypatch.setattr(speed, "gemm_peak_gflops", lambda timer: 100.0)
    probes: list = []
    monkeypatch.setattr(memory, "memory_probe", _fake_probe(probes))
    monkeypatch.setattr(other_libraries, "mygrad_conv", lambda conv: lambda: None)
    monkeypatch.setattr(suite, "naive_speedup", lambda timer: NAIVE)
    args = command.build_parser().parse_args(["--quick", "--repeat", "1", "--no-torch"])
    result = suite.run_all(args, fake_timer(rounds=1))
    lenet = [name for name, _ in LENET_CONV_CASES]
    assert [row["case"] for row in result["rows"]] == [
        lenet[0] + " fwd", lenet[0] + " fwd+bwd", lenet[1] + " fwd", lenet[1] + " fwd+bwd",
        "avg_pool N64 C64 28x28 k2 fwd", "avg_pool N64 C64 28x28 k2 fwd+bwd",
        "max_pool N64 C64 28x28 k2 fwd", "max_pool N64 C64 28x28 k2 fwd+bwd",
        "LeNet-5 train step batch 64", "LeNet-5 train step batch 256"]
    step = result["rows"][-1]
    assert step["numcnn_ms"] == pytest.approx(1.0)  # one fake reading per run
    assert step["numcnn_images_per_second"] == pytest.approx(256_000)
    assert result["torch"] is None and step["torch_ms"] is None
    assert [p[:3] for p in probes] == [("numcnn", conv, None) for _, conv in LENET_CONV_CASES]
    assert [r["case"] for r in result["memory"]["rows"]] == [n + " fwd+bwd" for n in lenet]
    assert result["epoch"] is None
    assert result["naive"] == NAIVE
    assert len(result["targets"]) == 7 and all(t["met"] is None for t in result["targets"])
    printed = capsys.readouterr().out
    other = result["other_libraries"]
    mygrad_line = "fwd+bwd vs MyGrad" if other else "mygrad is not installed"
    if other:
        assert [r["case"] for r in other["rows"]] == [n + " fwd+bwd" for n in lenet]
    sections = ["load average at start", "numcnn ms", "GEMM peak 100.0", "peak extra memory",
                mygrad_line, "naive loops vs vectorized", "targets (load average now 0.5)"]
    positions = [printed.index(section) for section in sections]
    assert positions == sorted(positions)
    json.dumps(result)  # all of it can go to --json


def test_memory_budget_applies_to_every_numcnn_timing_and_probe(monkeypatch, capsys):
    seen = {}

    def fake_cases(timer, repeat, quick, with_torch):
        seen["cases"] = engine.COLS_BUDGET_BYTES
        return {"gemm_peak_gflops": 1.0, "blas": "fake", "rows": []}

    def fake_other(timer, repeat):
        seen["other"] = engine.COLS_BUDGET_BYTES

    def fake_naive(timer):
        seen["naive"] = engine.COLS_BUDGET_BYTES
        return NAIVE

    probes: list = []
    monkeypatch.setattr(suite, "run_cases", fake_cases)
    monkeypatch.setattr(suite, "run_other_libraries", fake_other)
    monkeypatch.setattr(suite, "naive_speedup", fake_naive)
    monkeypatch.setattr(memory, "memory_probe", _fake_probe(probes))
    old = engine.COLS_BUDGET_BYTES
    args = command.build_parser().parse_args(["--memory-budget", "0.5", "--no-epoch",
                                              "--no-torch"])
    result = suite.run_all(args, fake_timer())
    assert seen == {"cases": 2**19, "other": 2**19, "naive": old}
    assert {(p[2], p[3]) for p in probes} == {(0.5, old)}  # the probe sets it in its process
    assert engine.COLS_BUDGET_BYTES == old
    assert result["memory"]["cols_budget_mib"] == 0.5 and result["epoch"] is None
    assert "im2col budget: 0.5 MiB" in capsys.readouterr().out
