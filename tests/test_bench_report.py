"""What the benchmark (bench/) reports: the target table, the naive line, the JSON file."""
from __future__ import annotations

import errno
import json
import os

import pytest
from bench import command, results
from bench.cases import CONV_CASES, MEMORY_TARGET_CASE, TRANSPOSE_CASE
from bench.naive import format_naive
from bench.targets import TARGETS, format_target_row, target_rows

import tmpfs

# --- the targets ---------------------------------------------------------------------------------


def _rows(ratios, lenet=(4.0, 3.0), stem=0.9, loaded=False):
    rows = [{"case": name + " fwd+bwd", "ratio": r, "loaded": loaded}
            for (name, _), r in zip(CONV_CASES, ratios + [stem])]
    for batch, numcnn_ms in zip((64, 256), lenet):
        rows.append({"case": f"LeNet-5 train step batch {batch}", "numcnn_ms": numcnn_ms,
                     "torch_ms": 3.0, "loaded": loaded})
    rows.append({"case": TRANSPOSE_CASE.name + " fwd+bwd", "ratio": 1.6, "loaded": loaded})
    return rows


def test_target_rows_compute_each_target_from_the_table():
    memory = {"rows": [{"case": MEMORY_TARGET_CASE.name + " fwd+bwd", "ratio": 0.8}]}
    targets = target_rows({"rows": _rows([1.0, 2.0, 1.0, 1.0]), "memory": memory})
    assert [t["target"] for t in targets] == [t.name for t in TARGETS]
    values = {t["target"]: t for t in targets}
    step64 = values["LeNet-5 step B64: numcnn img/s / torch img/s"]
    assert step64["value"] == pytest.approx(0.75) and step64["met"] is True  # at the limit
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
    assert not any(t["loaded"] for t in targets)


def test_target_lines_give_the_bound_and_the_verdict():
    targets = {t["target"]: t for t in target_rows({"rows": _rows([1.0, 2.0, 1.0, 1.0],
                                                                  lenet=(6.0, 3.0))})}
    step64 = format_target_row(targets["LeNet-5 step B64: numcnn img/s / torch img/s"])
    assert "  0.50  target >= 0.75" in step64 and step64.endswith("NOT met")
    worst = format_target_row(targets["conv fwd+bwd time ratio, worst of the 4 cases"])
    assert "  2.00  target <= 1.8" in worst and worst.endswith("NOT met")
    stem = format_target_row(targets["ResNet stem fwd+bwd time ratio"])
    assert stem.endswith("  met")


def test_targets_not_measured_and_loaded_hosts_are_said():
    targets = target_rows({"rows": _rows([1.0, 1.0, 1.0, None], loaded=True)})
    geomean = next(t for t in targets if "geometric" in t["target"])
    assert geomean["value"] is None and geomean["met"] is None
    assert format_target_row(geomean).endswith("not measured")  # no "(loaded host)" either
    step = targets[0]
    assert step["loaded"] and format_target_row(step).endswith("met (loaded host)")


def test_naive_line_rounds_for_the_reader():
    line = format_naive({"case": "c", "naive_ms": 100.0, "vectorized_ms": 0.2,
                         "speedup": 500.0, "naive_ns_per_multiply_add": 590.0,
                         "naive_lenet_epoch_conv_hours": 9.4})
    assert "100.0 ms vs 0.200 ms, 500x" in line and "590 ns per multiply-add" in line
    assert "about 9 h" in line


# --- the JSON file: atomically, and only over an earlier result ---------------------------------

NAIVE = {"case": "fake", "naive_ms": 2.0, "vectorized_ms": 1.0, "speedup": 2.0,
         "naive_ns_per_multiply_add": 1.0, "naive_lenet_epoch_conv_hours": 1.0}


@pytest.fixture
def fake_naive(monkeypatch):
    """``--naive`` runs return NAIVE at once; ``calls`` counts them."""
    calls = []
    monkeypatch.setattr(command, "naive_speedup", lambda timer: calls.append(1) or dict(NAIVE))
    return calls


def test_json_is_written_with_its_mark_and_rewritten_over_an_earlier_result(
        tmp_path, capsys, monkeypatch, fake_naive):
    out = tmp_path / "bench.json"
    assert command.main(["--naive", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written == {results.MARK[0]: results.MARK[1], **NAIVE}
    assert f"wrote {out}" in capsys.readouterr().out
    monkeypatch.setattr(command, "naive_speedup", lambda timer: dict(NAIVE, speedup=3.0))
    assert command.main(["--naive", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["speedup"] == 3.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]  # no temporaries left


@pytest.mark.parametrize("content, reason", [
    ("results of my thesis\n", "is not a result of numcnn bench (Expecting value"),
    ('{"rows": []}', 'is not a result of numcnn bench (no "benchmark": "numcnn bench" entry)'),
    ('["numcnn bench"]', 'is not a result of numcnn bench (no "benchmark"'),
    (b"\xff\xfe binary", "is not a result of numcnn bench ('utf-8' codec"),
])
def test_json_refuses_a_file_that_is_not_an_earlier_result_before_running(
        tmp_path, capsys, fake_naive, content, reason):
    out = tmp_path / "notes.json"
    if isinstance(content, bytes):
        out.write_bytes(content)
    else:
        out.write_text(content)
    before = out.read_bytes()
    with pytest.raises(SystemExit) as exit_:
        command.main(["--naive", "--json", str(out)], prog="numcnn bench")
    assert exit_.value.code == 2 and fake_naive == []  # refused before anything ran
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"numcnn bench: error: argument --json: {out} exists and ")
    assert reason in last and last.endswith("it is left as it is: remove it or choose another file")
    assert out.read_bytes() == before


def test_json_refuses_a_folder(tmp_path, capsys, fake_naive):
    with pytest.raises(SystemExit):
        command.main(["--naive", "--json", str(tmp_path)])
    assert f"argument --json: {tmp_path} is a folder" in capsys.readouterr().err
    assert fake_naive == []


def test_json_put_there_during_the_run_is_kept(tmp_path, monkeypatch, capsys):
    """The run takes minutes: a file that appears at the path meanwhile is checked again."""
    out = tmp_path / "bench.json"

    def naive_and_a_file_appears(timer):
        out.write_text("someone else's\n")
        return dict(NAIVE)

    monkeypatch.setattr(command, "naive_speedup", naive_and_a_file_appears)
    assert command.main(["--naive", "--json", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"numcnn: error: not writing the result: {out} exists and is not a "
                          "result of numcnn bench")
    assert out.read_text() == "someone else's\n"


def test_a_failed_write_leaves_the_earlier_result_whole(tmp_path, monkeypatch, capsys,
                                                        fake_naive):
    out = tmp_path / "bench.json"
    assert command.main(["--naive", "--json", str(out)]) == 0
    earlier = out.read_text()

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)  # the last step of an atomic write
    monkeypatch.setattr(command, "naive_speedup", lambda timer: dict(NAIVE, speedup=3.0))
    assert command.main(["--naive", "--json", str(out)]) == 1
    assert out.read_text() == earlier
    assert capsys.readouterr().err.strip() == (
        f"numcnn: error: cannot write {out}: No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


def test_json_into_a_missing_folder_is_refused_before_the_run(tmp_path, capsys, fake_naive):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as info:
        command.main(["--naive", "--json", str(blocker / "bench.json")])
    assert info.value.code == 2 and fake_naive == []                  # nothing ran
    assert f"{blocker} is not an existing folder" in capsys.readouterr().err


def test_json_into_a_folder_where_no_file_can_be_created_is_refused_before_the_run(
        tmp_path, capsys, monkeypatch, fake_naive):
    """As on a read-only file system, where even root cannot create the file."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(results.tempfile, "mkstemp", read_only)
    out = tmp_path / "bench.json"
    with pytest.raises(SystemExit) as info:
        command.main(["--naive", "--json", str(out)], prog="numcnn bench")
    assert info.value.code == 2 and fake_naive == []                  # nothing ran
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"numcnn bench: error: argument --json: cannot write {out}: no file can be created in "
        f"{tmp_path} (Read-only file system); choose a folder you may write to")


@pytest.fixture
def unwritable_folder(tmp_path):
    """``(folder, reason)``: a folder where this process cannot create a file."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    with tmpfs.unwritable_folder(folder) as reason:
        yield folder, reason


def test_json_into_a_read_only_folder_is_refused_before_the_run(unwritable_folder, capsys,
                                                                fake_naive):
    folder, reason = unwritable_folder
    with pytest.raises(SystemExit):
        command.main(["--naive", "--json", str(folder / "bench.json")])
    assert fake_naive == [] and f"no file can be created in {folder} ({reason})" in \
        capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_json_probe_of_the_folder_leaves_nothing_behind(tmp_path, fake_naive):
    out = tmp_path / "bench.json"
    assert results.json_path(str(out)) == out
    assert list(tmp_path.iterdir()) == []


def test_json_that_cannot_be_written_ends_with_one_error_line(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()

    def naive_then_folder_gone(timer):   # the folder vanishes (a file in its place) meanwhile
        folder.rmdir()
        folder.write_text("")
        return dict(NAIVE)

    monkeypatch.setattr(command, "naive_speedup", naive_then_folder_gone)
    assert command.main(["--naive", "--json", str(folder / "bench.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"numcnn: error: cannot write {folder / 'bench.json'}")
