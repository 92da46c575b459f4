"""Every bad input a user (careless or hostile) can give ends in one ``numcnn: error:`` line that
names the file or argument, with exit status 1, and no input makes numcnn allocate what the
file only claims: run in-process through :func:`numcnn.cli.main`, which is what the command
runs."""
from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from numcnn import checkpoint, io, models
from numcnn.cli import main
from numcnn.train import TrainConfig, load_model, save_checkpoint
from tmpfs import unwritable_folder


def one_line_error(capsys, argv, fragment) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numcnn: error: "), err
    assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("bad")
    save_checkpoint(cwd / "model.npz", models.get_model("lenet5"), None, None, TrainConfig(), 0)
    return cwd


@pytest.fixture(autouse=True)
def _in_folder(folder, monkeypatch):
    monkeypatch.chdir(folder)


def _rewrite_payload(src: Path, dst: Path, **changes) -> Path:
    payload = checkpoint.load(src)
    payload.update(changes)
    checkpoint.save(dst, payload)
    return dst


def _rewrite_meta(src: Path, dst: Path, edit) -> Path:
    """Copy a checkpoint with its JSON document changed by ``edit(meta)``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "__meta__.npy":
                from io import BytesIO

                meta = json.loads(str(np.load(BytesIO(data))[()]))
                edit(meta)
                buf = BytesIO()
                np.save(buf, np.array(json.dumps(meta)))
                data = buf.getvalue()
            zout.writestr(info.filename, data)
    return dst


# --- --out --------------------------------------------------------------------------------------

@pytest.mark.parametrize("out, fragment", [
    ("", "--out must name a folder, got an empty string"),
    ("model.npz", "--out model.npz is a file, not a folder"),
    ("model.npz/run", "--out model.npz/run lies under model.npz, which is a file"),
    ("x" * 300, "File name too long"),
])
def test_bad_out_folders(capsys, out, fragment):
    one_line_error(capsys, ["train", "--out", out, "--limit", 10, "--no-download"], fragment)


def test_a_read_only_out_folder(capsys, folder):
    """A folder without write permission; root writes through permissions, so as root the
    folder is a read-only tmpfs mount instead."""
    ro = folder / "ro"
    ro.mkdir(exist_ok=True)
    with unwritable_folder(ro):
        one_line_error(capsys, ["train", "--out", ro / "run", "--limit", 10], "ro/run")


def test_resume_and_overwrite_together(capsys):
    one_line_error(capsys, ["train", "--out", "x", "--resume", "--overwrite"],
                   "--resume and --overwrite exclude each other")


# --- predict --------------------------------------------------------------------------------------

def _npy_header(path: Path, shape, dtype="|u1") -> Path:
    header = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    header += " " * (63 - len(header) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares width x height (a decompression bomb's header)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b""), "is not a readable .npy array"),
    (lambda p: np.save(p, np.zeros(0, np.uint8)), "expected a 28x28 image, got shape (0,)"),
    (lambda p: _npy_header(p, (100000, 100000)), "expected a 28x28 image, got shape"),
    (lambda p: _npy_header(p, (28, 28)), "is damaged: its header describes 784 bytes"),
    (lambda p: np.save(p, np.zeros((28, 28), bool)), "got dtype bool"),
    (lambda p: np.save(p, np.zeros((28, 28), complex)), "got dtype complex128"),
    (lambda p: np.save(p, np.zeros((28, 28), "datetime64[s]")), "got dtype datetime64[s]"),
    (lambda p: np.save(p, np.zeros((28, 28), [("a", "u1")])), "structured"),
], ids=["zero bytes", "empty", "claims 1e10", "truncated", "bool", "complex", "datetime",
        "structured"])
def test_predict_refuses_bad_npy_images(capsys, tmp_path, make, fragment):
    path = tmp_path / "image.npy"
    make(path)
    tracemalloc.start()
    try:
        one_line_error(capsys, ["predict", "model.npz", path], fragment)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_predict_refuses_a_png_decompression_bomb(capsys, tmp_path):
    pytest.importorskip("PIL")
    for size in (20000, 100000):   # under and over Pillow's own limit
        path = _png_claiming(tmp_path / f"bomb{size}.png", size, size)
        one_line_error(capsys, ["predict", "model.npz", path], f"bomb{size}.png")


# --- checkpoints ----------------------------------------------------------------------------------

@pytest.mark.parametrize("edit, fragment", [
    (lambda m: m.update(version="2"), "checkpoint version '2' is not a positive integer"),
    (lambda m: m.update(version=2), "written by a newer numcnn"),
], ids=["version string", "newer"])
def test_checkpoint_versions(capsys, tmp_path, folder, edit, fragment):
    path = _rewrite_meta(folder / "model.npz", tmp_path / "v.npz", edit)
    one_line_error(capsys, ["eval", path], fragment)


@pytest.mark.parametrize("changes, fragment", [
    ({"dataset": ["x"]}, "names an unknown dataset ['x']"),
    ({"dataset": "mnist2"}, ("names an unknown dataset 'mnist2'; numcnn knows fashion-mnist, "
                            "mnist")),
    ({"model_config": {"num_classes": 10 ** 9}}, "model_config num_classes=1000000000 exceeds"),
    ({"model_config": [1]}, "model_config is a list"),
])
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_damaged_checkpoint_metadata(capsys, tmp_path, folder, changes, fragment, command):
    path = _rewrite_payload(folder / "model.npz", tmp_path / "c.npz", **changes)
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    argv = ["eval", path] if command == "eval" else ["predict", path, tmp_path / "digit.npy"]
    one_line_error(capsys, argv, fragment)


def test_a_file_that_is_no_zip_archive(capsys, tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello\n")
    line = one_line_error(capsys, ["eval", path], "is not an .npz (zip) archive")
    assert "pickled" not in line


def _add_entry(path: Path, name: str, data: bytes, declared: int | None = None):
    """Append a deflated zip entry (optionally lying about its uncompressed size)."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    if declared is not None:
        raw = bytearray(path.read_bytes())
        encoded = name.encode()
        for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = 0
            while (at := raw.find(signature, at)) >= 0:
                name_at = at + (30 if signature == b"PK\x03\x04" else 46)
                if raw[name_at:name_at + len(encoded)] == encoded:
                    raw[at + offset:at + offset + 4] = struct.pack("<I", declared)
                at += 4
        path.write_bytes(bytes(raw))


def test_an_unreferenced_bomb_entry_is_never_decompressed(tmp_path, folder):
    """A small checkpoint with an extra entry inflating to 256 MiB loads in little memory."""
    path = tmp_path / "bomb.npz"
    path.write_bytes((folder / "model.npz").read_bytes())
    _add_entry(path, "junk.npy", bytes(256 << 20))
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        model, _ = load_model(path)
        payload = checkpoint.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "model_state" in payload and model.arch == "lenet5"
    assert peak < 32 << 20, peak


def test_a_referenced_entry_that_lies_about_its_size_is_refused(tmp_path):
    path = tmp_path / "liar.npz"
    checkpoint.save(path, {"w": np.zeros(10)})
    name = next(n for n in zipfile.ZipFile(path).namelist() if n != "__meta__.npy")
    data = zipfile.ZipFile(path).read(name)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp_path / "l2.npz", "w") as zout:
        zout.writestr("__meta__.npy", zin.read("__meta__.npy"))
    _add_entry(tmp_path / "l2.npz", name, data, declared=1 << 30)
    with pytest.raises(checkpoint.CheckpointError, match="declares 1073741824 bytes"):
        checkpoint.load(tmp_path / "l2.npz")


def test_arrays_beyond_the_size_limit_are_refused_before_reading(tmp_path):
    path = tmp_path / "big.npz"
    checkpoint.save(path, {"w": np.zeros(1000)})
    with pytest.raises(checkpoint.CheckpointError, match="need more than 4000 bytes"):
        checkpoint.load(path, max_bytes=4000)
    assert checkpoint.load(path, max_bytes=8000)["w"].shape == (1000,)


# --- safetensors ----------------------------------------------------------------------------------

def _safetensors_file(path: Path, header: dict, data: bytes = b"") -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


@pytest.mark.parametrize("header, data, fragment", [
    ({"w": {"dtype": "F32", "shape": [100000, 100000], "data_offsets": [0, 4 * 10 ** 10]}},
     b"\0" * 16, "outside the 16 bytes of data"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 16,
     "declares F32 (2,) (8 bytes)"),
    ({"w": {"dtype": "O", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype 'O'"),
    ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8,
     "not a list of sizes"),
])
def test_safetensors_headers_are_checked_before_reading(tmp_path, header, data, fragment):
    pytest.importorskip("safetensors")
    path = _safetensors_file(tmp_path / "x.safetensors", header, data)
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        io.load_safetensors(path)


def test_safetensors_header_length_beyond_the_file(tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ValueError, match="header declares 1099511627776 bytes"):
        io.load_safetensors(path)


def test_safetensors_architecture_sizes_are_checked_before_building(tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "m.safetensors"
    io.save(models.get_model("lenet5"), path)
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    config = json.loads(header["__metadata__"]["config"])
    config["num_classes"] = 10 ** 9
    header["__metadata__"]["config"] = json.dumps(config)
    _safetensors_file(path, header, raw[8 + n:])
    with pytest.raises(ValueError, match="num_classes=1000000000 exceeds"):
        io.load(path)


def _numcnn_file(path: Path, arch: str, config: dict, tensors: dict) -> Path:
    import safetensors.numpy as st

    st.save_file(tensors, str(path), metadata={"format": "numcnn", "format_version": "1",
                                              "arch": arch, "config": json.dumps(config)})
    return path


@pytest.mark.parametrize("arch, config, fragment", [
    ("sequential", {"layers": [["0", {"type": "Linear", "in_features": 10 ** 6,
                                      "out_features": 10 ** 6}]]},
     "needs 1000001000000 weight and buffer values (1000001000000 for Linear layer '0')"),
    ("sequential", {"layers": [["body", {"type": "Sequential", "layers": [
        ["0", {"type": "ReLU"}],
        ["1", {"type": "Conv2d", "in_channels": 10 ** 6, "out_channels": 10 ** 6,
               "kernel_size": 1}]]}]]},
     "for Conv2d layer 'body.1')"),
    ("convnet", {"width": 10 ** 6, "hidden": 1}, "for model 'convnet')"),
])
def test_an_architecture_bigger_than_the_stored_tensors_is_refused_before_building(
        tmp_path, arch, config, fragment):
    """Every size is within the largest stored dimension (10**6 bytes), so only the count of
    the values the layers would hold shows that the file cannot back them."""
    pytest.importorskip("safetensors")
    path = _numcnn_file(tmp_path / "m.safetensors", arch, config,
                        {"pad": np.zeros(10 ** 6, np.uint8)})
    with pytest.raises(ValueError, match="but the file stores only 1000000;") as caught:
        io.load(path)
    assert fragment in str(caught.value)


def test_load_safetensors_reads_only_the_tensors_the_model_takes(tmp_path):
    pytest.importorskip("safetensors")
    import safetensors.numpy as st

    model = models.get_model("lenet5")
    state = dict(io.torch_state_dict(model))
    state["junk"] = np.zeros(64 << 20, np.uint8)
    path = tmp_path / "extra.safetensors"
    st.save_file(state, str(path))
    tracemalloc.start()
    try:
        io.load_safetensors(models.get_model("lenet5"), path, strict=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
    with pytest.raises(KeyError, match="junk"):
        io.load_safetensors(models.get_model("lenet5"), path)


# --- metrics and plot -----------------------------------------------------------------------------

ROW = {"epoch": 1, "train_loss": 2.3, "train_acc": 0.1, "test_loss": 2.3, "test_acc": 0.1}


@pytest.mark.parametrize("lines, fragment", [
    (["[1,2,3]", json.dumps(ROW)], "metrics.jsonl line 1 is a JSON list"),
    ([json.dumps({**ROW, "epoch": "x"}), json.dumps(ROW)],
     "metrics.jsonl line 1: 'epoch' must be a positive integer, got 'x'"),
    ([json.dumps({k: v for k, v in ROW.items() if k != "train_loss"})],
     "metrics.jsonl line 1 lacks 'train_loss'"),
    (["{not json", json.dumps(ROW)], "metrics.jsonl line 1 is not valid JSON"),
])
def test_plot_names_file_and_line_of_a_malformed_metrics_line(capsys, tmp_path, lines, fragment):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    one_line_error(capsys, ["plot", run, "--no-download"], fragment)


def test_plot_with_metrics_that_is_a_folder(capsys, tmp_path):
    (tmp_path / "run" / "metrics.jsonl").mkdir(parents=True)
    one_line_error(capsys, ["plot", tmp_path / "run"], "metrics.jsonl is a folder")


def test_plot_skips_a_torn_last_line_with_a_warning(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps(ROW) + '\n{"epoch": 2, "train_lo')
    assert main(["plot", str(run), "--no-download"]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.splitlines()
    assert len(warnings) == 1 and "metrics.jsonl line 2 is incomplete" in warnings[0]
    assert (run / "curves.png").is_file()


# --- IDX ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_an_idx_header_of_0xffffffff_names_the_file(tmp_path, gz):
    import gzip

    from numcnn.data import IdxFormatError, read_idx

    content = b"\0\0\x08\x03" + struct.pack(">III", 0xFFFFFFFF, 28, 28) + b"\0" * 100
    path = tmp_path / ("bad.idx.gz" if gz else "bad.idx")
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(IdxFormatError, match=r"bad\.idx.*declares 4294967295x28x28"):
        read_idx(path)


# --- no made-up numbers ---------------------------------------------------------------------------

def test_an_empty_test_split_is_reported_not_scored(capsys, tmp_path, folder):
    """An empty test set used to give 'loss 0, accuracy 0 %'."""
    import gzip
    import shutil

    from numcnn.data.paths import bundled_data_dir

    bundled = bundled_data_dir()
    if bundled is None or not (bundled / "mnist").is_dir():
        pytest.skip("needs the bundled MNIST training files")
    mnist = tmp_path / "d" / "mnist"
    mnist.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(bundled / "mnist" / name, mnist / name)
    (mnist / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", 0, 28, 28)))
    (mnist / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\0\0\x08\x01" + struct.pack(">I", 0)))
    data_dir = tmp_path / "d"
    one_line_error(capsys, ["train", "--data-dir", data_dir, "--limit", 64, "--out",
                            tmp_path / "run", "--no-download"], "test split holds no images")
    one_line_error(capsys, ["eval", folder / "model.npz", "--data-dir", data_dir,
                            "--no-download"], "there is no test data")


@pytest.mark.parametrize("flags, named", [
    (["--opset", "13"], "--opset"), (["--dtype", "float64"], "--dtype"),
    (["--batch-size", "4"], "--batch-size"), (["--input-shape", "1,32,32"], "--input-shape"),
    (["--opset", "18", "--dtype", "float32"], "--opset, --dtype")])
def test_onnx_flags_with_a_safetensors_output_are_an_error_not_ignored(capsys, flags, named):
    line = one_line_error(capsys, ["export", "model.npz", "m.safetensors", *flags], named)
    assert "applies to an .onnx output only" in line
    assert not Path("m.safetensors").exists()


@pytest.mark.parametrize("op, w_shape, kwargs, out_shape", [
    ("conv2d", (4, 3, 3, 3), {}, (0, 4, 6, 6)),
    ("conv2d", (3, 1, 3, 3), {"groups": 3, "padding": 1}, (0, 3, 8, 8)),
    ("conv_transpose2d", (3, 4, 3, 3), {"stride": 2}, (0, 4, 17, 17)),
])
def test_an_empty_batch_gives_an_empty_output_and_zero_gradients(op, w_shape, kwargs, out_shape):
    import numcnn as nc
    import numcnn.functional as F

    x = nc.tensor(np.zeros((0, 3, 8, 8)), requires_grad=True)
    w = nc.tensor(np.random.default_rng(0).standard_normal(w_shape), requires_grad=True)
    b = nc.tensor(np.ones(out_shape[1]), requires_grad=True)
    y = getattr(F, op)(x, w, b, **kwargs)
    assert y.shape == out_shape and y.dtype == np.float64
    y.backward(np.ones(y.shape))
    assert x.grad.shape == (0, 3, 8, 8)
    assert w.grad.shape == w_shape and not w.grad.any() and not b.grad.any()


def test_a_weight_with_no_output_channel_is_refused_by_name():
    import numcnn.functional as F

    with pytest.raises(ValueError, match=r"conv2d: weight shape \(0, 3, 3, 3\) has an empty axis"):
        F.conv2d(np.zeros((2, 3, 8, 8)), np.zeros((0, 3, 3, 3)))


@pytest.mark.parametrize("content, match", [
    (b"root:x:0:0:root:/root:/bin/bash\n", "it is neither an .npz \\(zip\\) archive nor a safetensors"),
    (b"", "it is neither an .npz"),
    (None, "it is a .npy array"),
])
def test_load_of_a_file_that_is_no_save_names_it(tmp_path, content, match):
    import numcnn as nc

    path = tmp_path / "f.npz"
    if content is None:
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path = path.with_suffix(".npy")
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"load: {path} is not a numcnn.save file: {match}"):
        nc.load(path)
    with pytest.raises(IsADirectoryError, match=f"load: {tmp_path} is a folder, not a file"):
        nc.load(tmp_path)


def test_save_refuses_a_self_containing_object_and_a_text_file(tmp_path):
    import io as pyio

    import numcnn as nc

    loop: dict = {"w": np.ones(2)}
    loop["self"] = loop
    path = tmp_path / "keep.npz"
    nc.save({"w": np.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="save: obj contains itself"):
        nc.save(loop, path)
    with pytest.raises(TypeError, match="got the text file object StringIO"):
        nc.save({"w": np.ones(2)}, pyio.StringIO())
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["keep.npz"]


def test_conv_transpose_of_an_empty_image_names_its_own_input():
    import numcnn.functional as F

    with pytest.raises(ValueError, match=r"conv_transpose2d: input height and width must be "
                                         r">= 1, got 0x8 \(input shape \(2, 3, 0, 8\)\)"):
        F.conv_transpose2d(np.zeros((2, 3, 0, 8)), np.zeros((3, 4, 3, 3)))


@pytest.mark.parametrize("flag, value, expected", [
    ("--repeat", "0", "expected a positive integer, got 0"),
    ("--rounds", "-1", "expected a positive integer, got -1"),
    ("--memory-budget", "0", "expected a positive number, got 0"),
    ("--memory-budget", "nan", "expected a positive number, got nan"),
])
def test_bench_counts_must_be_positive_before_anything_runs(capsys, flag, value, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", flag, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert f"numcnn bench: error: argument {flag}: {expected}" in err.splitlines()[-1]


@pytest.mark.parametrize("nested", ["[" * 100_000 + "]" * 100_000,
                                    '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_safetensors_json_nested_past_the_stack_is_refused(tmp_path, nested):
    pytest.importorskip("safetensors")
    path = tmp_path / "deep.safetensors"
    path.write_bytes(struct.pack("<Q", len(nested)) + nested.encode())
    with pytest.raises(ValueError, match="its header is not JSON"):
        io.load(path)
    _numcnn_file(path, "lenet5", {}, {"w": np.zeros(1, np.float32)})
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["config"] = nested
    _safetensors_file(path, header, raw[8 + n:])
    with pytest.raises(ValueError, match="config stored in .* is not valid JSON"):
        io.load(path)
