"""Checkpoint files: exact round trips, no pickle on load, atomic writes, clear errors."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from numcnn import checkpoint
from numcnn.checkpoint import CheckpointError

SRC = Path(__file__).resolve().parents[1] / "src"


def assert_same(got, expected, where="/"):
    """Equal values of exactly the same types; arrays bit for bit, with dtype and shape."""
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray), where
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        assert got.tobytes() == expected.tobytes(), where
    elif isinstance(expected, dict):
        assert type(got) is dict, where
        assert list(got) == list(expected), where   # same keys, same types, same order
        for k in expected:
            assert_same(got[k], expected[k], f"{where}{k!r}/")
    elif isinstance(expected, (list, tuple)):
        assert type(got) is list and len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{where}{i}/")
    elif isinstance(expected, float) and math.isnan(expected):
        assert type(got) is float and math.isnan(got), where
    else:
        assert type(got) is type(expected) and got == expected, where


def nested_payload(rng) -> dict:
    return {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": rng.standard_normal(5),
        "f64_0d": np.array(2.5),
        "f32_empty": np.zeros((0, 3), np.float32),
        "f64_fortran": np.asfortranarray(rng.standard_normal((2, 3))),
        "i64": np.arange(-3, 3, dtype=np.int64),
        "u8": np.array([[0, 255]], np.uint8),
        "flags": np.array([True, False]),
        "int": 7,
        "negative": -3,
        "third": 1 / 3,
        "subnormal": 5e-324,
        "inf": -math.inf,
        "nan": math.nan,
        "big": 2**127 + 12345,        # a PCG64 state is a 128-bit int
        "negative_big": -(2**100) - 1,
        "text": 'naïve 数字 "quoted" \\ and a\nnewline',
        "empty": "",
        "none": None,
        "yes": True,
        "no": False,
        "list": [1, "two", 3.0, [np.arange(3), {"deep": np.ones(2, np.float32)}], None, []],
        "int_keys": {0: "zero", 7: np.array([7.0]), -1: "minus one", 2**70: "huge key"},
        "both_ones": {1: "int one", "1": "str one"},
        "odd/keys": {"a/b": 1, "../..": 2, "": 3, "a0:/x": np.zeros(1)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.full((2, 2), 0.5, np.float32)}},
                      "param_groups": [{"lr": 0.1, "betas": [0.9, 0.999], "params": [0, 1]}]},
    }


def test_round_trip_of_nested_state(tmp_path, rng):
    payload = nested_payload(rng)
    path = checkpoint.save(tmp_path / "ckpt.npz", payload)
    assert path == tmp_path / "ckpt.npz"
    assert_same(checkpoint.load(path), payload)


def test_round_trip_turns_numpy_scalars_and_tuples_into_python_values(tmp_path):
    path = checkpoint.save(tmp_path / "c.npz", {
        "f": np.float32(0.5), "i": np.int64(-9), "b": np.bool_(True), "t": (1, (2, 3))})
    assert_same(checkpoint.load(path), {"f": 0.5, "i": -9, "b": True, "t": [1, [2, 3]]})


def test_round_trip_of_a_generator_state_gives_the_same_draws(tmp_path):
    gen = np.random.default_rng(123)
    gen.random(7)
    checkpoint.save(tmp_path / "rng.npz", {"rng": gen.bit_generator.state})
    other = np.random.default_rng(0)
    other.bit_generator.state = checkpoint.load(tmp_path / "rng.npz")["rng"]
    np.testing.assert_array_equal(other.random(20), gen.random(20))


def test_save_creates_missing_folders(tmp_path):
    path = checkpoint.save(tmp_path / "a" / "b" / "c.npz", {"x": 1})
    assert checkpoint.load(path) == {"x": 1}


def test_the_file_is_a_plain_npz_with_a_json_document(tmp_path):
    path = checkpoint.save(tmp_path / "c.npz", {"w": np.ones(3, np.float32), "n": 2})
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"][()]))
        arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
    assert meta["format"] == "numcnn-checkpoint" and meta["version"] == 1
    assert [a.dtype for a in arrays.values()] == [np.float32]


@pytest.mark.parametrize("payload", [
    {"s": {1, 2}},
    {"o": object()},
    {"nested": [{"deep": b"bytes"}]},
    {(1, 2): "tuple key"},
    {1.5: "float key"},
    {"state": [np.array([1, "x"], dtype=object)]},   # np.savez would pickle it
])
def test_save_rejects_what_json_and_npz_cannot_hold(tmp_path, payload):
    with pytest.raises(TypeError, match="checkpoint"):
        checkpoint.save(tmp_path / "c.npz", payload)
    assert list(tmp_path.iterdir()) == []   # nothing written, no temporary file


# --- no pickle ------------------------------------------------------------------------------

class _Touch:
    """Unpickling this object creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return Path.touch, (self.marker,)


def _valid_meta(tree) -> np.ndarray:
    return np.array(json.dumps({"format": "numcnn-checkpoint", "version": 1, "tree": tree}))


def test_the_pickle_payload_used_below_is_live(tmp_path):
    """Control: unpickling the payload does create the marker file."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_Touch(marker)))
    assert marker.exists()


def test_load_refuses_an_object_array_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=_valid_meta({"__dict__": [["x", {"__array__": "evil"}]]}),
             evil=np.array([_Touch(marker)], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        checkpoint.load(path)
    assert not marker.exists()
    # control: the same file does run code when pickle is allowed
    with np.load(path, allow_pickle=True) as npz:
        npz["evil"]
    assert marker.exists()


def test_load_refuses_a_pickled_meta_entry(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array([_Touch(marker)], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        checkpoint.load(path)
    assert not marker.exists()


def test_load_refuses_a_plain_pickle_file(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"model_state": _Touch(marker)}))
    with pytest.raises(CheckpointError, match="evil.npz"):
        checkpoint.load(path)
    assert not marker.exists()


# --- atomic writes ---------------------------------------------------------------------------

def _crashing_savez(exc):
    real = np.savez

    def savez(file, *args, **kwds):
        buffer = io.BytesIO()
        real(buffer, *args, **kwds)
        data = buffer.getvalue()
        file.write(data[:len(data) // 2])   # half the archive reaches the disk, then the crash
        raise exc

    return savez


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, exc):
    path = tmp_path / "last.npz"
    old = {"epoch": 1, "w": np.arange(1000, dtype=np.float32)}
    checkpoint.save(path, old)
    before = path.read_bytes()
    monkeypatch.setattr(np, "savez", _crashing_savez(exc))
    with pytest.raises(type(exc)):
        checkpoint.save(path, {"epoch": 2, "w": np.zeros(1000, np.float32)})
    assert path.read_bytes() == before
    assert_same(checkpoint.load(path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]   # no temporary file


def test_a_crash_before_the_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    checkpoint.save(path, {"epoch": 1})

    def replace(src, dst):
        raise OSError("crash before the rename")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename"):
        checkpoint.save(path, {"epoch": 2})
    monkeypatch.undo()
    assert checkpoint.load(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]


def test_a_crash_during_the_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(np, "savez", _crashing_savez(OSError("disk failure")))
    with pytest.raises(OSError):
        checkpoint.save(tmp_path / "last.npz", {"w": np.ones(100)})
    assert list(tmp_path.iterdir()) == []


def test_a_killed_process_leaves_the_previous_checkpoint_intact(tmp_path):
    """A process killed mid-write (no clean-up runs) never damages the checkpoint."""
    path = tmp_path / "last.npz"
    checkpoint.save(path, {"epoch": 1, "w": np.arange(10.0)})
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import io, os
        import numpy as np
        from numcnn import checkpoint
        real = np.savez
        def savez(file, *args, **kwds):
            buffer = io.BytesIO()
            real(buffer, *args, **kwds)
            file.write(buffer.getvalue()[:100])
            file.flush()
            os._exit(9)
        np.savez = savez
        checkpoint.save({str(path)!r}, {{"epoch": 2, "w": np.zeros(10000)}})
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 9, proc.stderr.decode()
    assert path.read_bytes() == before
    assert_same(checkpoint.load(path), {"epoch": 1, "w": np.arange(10.0)})


def test_save_replaces_the_checkpoint_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "last.npz"
    checkpoint.save(path, {"epoch": 1})
    checkpoint.save(path, {"epoch": 2})
    assert checkpoint.load(path) == {"epoch": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.npz"]


# --- broken files ------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path, rng) -> Path:
    return checkpoint.save(tmp_path / "good.npz", {"w": rng.standard_normal(2000), "epoch": 3})


@pytest.mark.parametrize("cut", [lambda n: 0, lambda n: 1, lambda n: 10, lambda n: n // 4,
                                 lambda n: n // 2, lambda n: n - 30, lambda n: n - 1],
                         ids=["empty", "1 byte", "10 bytes", "quarter", "half", "no directory",
                              "last byte missing"])
def test_a_truncated_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path, saved, cut):
    data = saved.read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:cut(len(data))])
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_random_bytes_raise_checkpoint_error_naming_the_file(tmp_path, rng):
    path = tmp_path / "random.npz"
    path.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_a_flipped_byte_in_an_array_is_detected(tmp_path, saved):
    data = bytearray(saved.read_bytes())
    w = checkpoint.load(saved)["w"]
    at = data.find(w[1000:1002].tobytes())
    assert at > 0
    data[at + 3] ^= 0xFF
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.npz"):
        checkpoint.load(path)


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _npz(p, w=np.ones(3)), "no __meta__"),
    (lambda p: np.save(p.with_suffix(".npy"), np.ones(3)) or p.with_suffix(".npy").rename(p),
     "single array"),
    (lambda p: _npz(p, __meta__=np.array("{not json")), "not a readable"),
    (lambda p: _npz(p, __meta__=np.array("[1, 2]")), "not a numcnn checkpoint"),
    (lambda p: _npz(p, __meta__=np.array(json.dumps({"format": "other", "tree": {}}))),
     "format 'other'"),
    (lambda p: _npz(p, __meta__=np.array(json.dumps(
        {"format": "numcnn-checkpoint", "version": 99, "tree": 1}))), "newer numcnn"),
    (lambda p: _npz(p, __meta__=np.array(json.dumps(
        {"format": "numcnn-checkpoint", "version": 1}))), "damaged"),
    (lambda p: _npz(p, __meta__=_valid_meta({"__dict__": [["w", {"__array__": "gone"}]]})),
     "damaged: missing entry 'gone'"),
    (lambda p: _npz(p, __meta__=_valid_meta({"__dict__": [["w"]]})), "damaged"),
], ids=["no meta", "npy", "meta not json", "meta not a dict", "other format", "newer version",
        "no tree", "missing array", "bad tree"])
def test_files_that_are_not_checkpoints_raise_checkpoint_error(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(CheckpointError, match=message) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)


def test_a_missing_file_raises_file_not_found(tmp_path):
    path = tmp_path / "nowhere" / "last.npz"
    with pytest.raises(FileNotFoundError, match="last.npz"):
        checkpoint.load(path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
