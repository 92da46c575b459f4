"""The benchmark's peak-memory table (bench/): probes in a fresh process, and the rows."""
from __future__ import annotations

import pytest
from bench import memory, memory_probe
from bench.cases import Conv, ConvCase

from numcnn.ops import engine

# big enough that its buffers need fresh pages (above glibc's mmap threshold), still fast
SMALL_CASE = Conv(8, 4, 8, 32, 3, 1, 1)


@pytest.mark.parametrize("library", ["numcnn", "torch"])
def test_memory_probe_measures_a_positive_peak(library):
    if library == "torch":
        pytest.importorskip("torch")
    result = memory.memory_probe(library, SMALL_CASE, threads=1)
    assert result["library"] == library
    assert result["method"] in (memory_probe.METHOD_HWM, memory_probe.METHOD_MAXRSS)
    assert 0 < result["extra_mib"] < 200
    assert result["peak_mib"] == pytest.approx(result["before_mib"] + result["extra_mib"])


def test_memory_budget_reaches_the_probe_and_lowers_the_peak():
    case = Conv(16, 32, 16, 28, 3, 1, 1)  # im2col columns of 7 MiB: one chunk by default
    default = memory.memory_probe("numcnn", case)
    small = memory.memory_probe("numcnn", case, budget_mib=0.25)
    assert default["cols_budget_bytes"] == engine.COLS_BUDGET_BYTES
    assert small["cols_budget_bytes"] == 2**18
    assert small["extra_mib"] < 0.6 * default["extra_mib"]


def test_a_failing_probe_says_which_and_why():
    with pytest.raises(RuntimeError, match=r"memory probe mxnet \[8, 4, 8, 32, 3, 1, 1\] failed: "
                                           r".*invalid choice: 'mxnet'"):
        memory.memory_probe("mxnet", SMALL_CASE)


def test_peak_falls_back_to_ru_maxrss(monkeypatch):
    monkeypatch.setattr(memory_probe, "_reset_peak", lambda: False)
    result = memory_probe.measure_peak_memory("numcnn", Conv(2, 1, 2, 8, 3, 1, 0),
                                              warmup_batch=0)
    assert result["method"] == memory_probe.METHOD_MAXRSS
    assert result["extra_mib"] >= 0 and result["peak_mib"] >= result["before_mib"]


def test_rows_compare_the_libraries_and_keep_failures(monkeypatch, capsys):
    extra = {("numcnn", 1): 30.0, ("torch", 1): 40.0, ("numcnn", 2): 5.0}

    def fake_probe(library, conv, budget_mib=None, threads=None):
        if (library, conv.N) not in extra:
            raise RuntimeError(f"memory probe {library} failed: out of memory")
        method = memory_probe.METHOD_MAXRSS if library == "torch" else memory_probe.METHOD_HWM
        return {"extra_mib": extra[library, conv.N], "method": method,
                "cols_budget_bytes": 2**20 if library == "numcnn" else None}

    monkeypatch.setattr(memory, "memory_probe", fake_probe)
    monkeypatch.setattr(memory.importlib.util, "find_spec", lambda name: object())  # "torch"
    cases = [ConvCase("one", Conv(1, 1, 1, 8, 3, 1, 0)), ConvCase("two", Conv(2, 1, 1, 8, 3, 1, 0))]
    result = memory.run_memory(cases, with_torch=True, budget_mib=1.0)
    one, two = result["rows"]
    assert (one["numcnn_mib"], one["torch_mib"], one["ratio"]) == (30.0, 40.0, 0.75)
    assert one["method"] == f"numcnn {memory_probe.METHOD_HWM}, torch {memory_probe.METHOD_MAXRSS}"
    assert two["numcnn_mib"] == 5.0 and two["torch_mib"] is None and two["ratio"] is None
    assert two["error"] == "memory probe torch failed: out of memory"
    assert result["cols_budget_mib"] == 1.0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [memory.format_memory_row(one), memory.format_memory_row(two)]
    assert printed[1].endswith("(memory probe torch failed: out of memory)")


def test_format_rows_without_torch():
    row = {"case": "conv x", "numcnn_mib": 3.25, "torch_mib": None, "ratio": None,
           "method": memory_probe.METHOD_HWM}
    line = memory.format_memory_row(row)
    assert line.startswith("conv x") and line.split()[-4:] == ["3.2", "-", "-",
                                                               memory_probe.METHOD_HWM]


def test_an_unknown_library_is_named():
    with pytest.raises(ValueError, match="unknown library 'jax'; choose one of numcnn, torch"):
        memory_probe.measure_peak_memory("jax", SMALL_CASE)
