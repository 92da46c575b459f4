"""The ``numcnn`` command, run as a user runs it: ``python -m numcnn ...`` in a fresh process."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numcnn import checkpoint, data, models
from numcnn.cli import build_parser
from numcnn.train import TrainConfig, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def numcnn(*args, cwd, timeout=300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NUMCNN_DATA"}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["XDG_CACHE_HOME"] = str(Path(cwd) / ".cache")   # never the user's cache
    return subprocess.run([sys.executable, "-m", "numcnn", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_user_error(proc: subprocess.CompletedProcess, fragment: str) -> str:
    """Exit status 1 and exactly one line on stderr, ``numcnn: error: ...``, no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("numcnn: error: "), lines[0]
    assert fragment in lines[0], lines[0]
    return lines[0]


def assert_usage_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    """argparse's own errors: usage, one ``error:`` line, exit status 2, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("numcnn") and "error:" in last and fragment in last, last


def mnist_test_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    test = data.MNIST(train=False, limit=n, download=False)
    return test.data, test.targets


# --- help --------------------------------------------------------------------------------------

EXPECTED_FLAGS = {
    "train": ["--model", "--dataset", "--epochs", "--batch-size", "--lr", "--optimizer",
              "--momentum", "--weight-decay", "--scheduler", "--activation", "--width", "--augment",
              "--no-augment", "--seed", "--out", "--resume", "--data-dir", "--limit",
              "--test-limit", "--dtype", "--no-download", "--progress", "--overwrite",
              "--patience", "--log-lr"],
    "eval": ["checkpoint", "--dataset", "--data-dir", "--limit", "--batch-size", "--no-download"],
    "predict": ["checkpoint", "images", "--invert", "--top"],
    "plot": ["dir", "--data-dir", "--no-download"],
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions
                  if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_lists_every_command(tmp_path):
    proc = numcnn("--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    for command in ["train", "eval", "predict", "plot", "explain", "bench"]:
        assert re.search(rf"^\s+{command}\s", proc.stdout, re.MULTILINE), command
    assert set(_subparsers()) >= {"train", "eval", "predict", "plot", "explain", "bench"}


def test_no_command_prints_help_and_fails(tmp_path):
    proc = numcnn(cwd=tmp_path)
    assert proc.returncode == 2 and "usage: numcnn" in proc.stdout


# bench passes its arguments on to the harness, whose help tests/test_bench_cli.py checks
@pytest.mark.parametrize("command", ["train", "eval", "predict", "plot", "explain"])
def test_command_help_mentions_every_flag(tmp_path, command):
    proc = numcnn(command, "--help", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
    parser = _subparsers()[command]
    flags = [s for a in parser._actions for s in a.option_strings]
    flags += [a.metavar or a.dest for a in parser._actions if not a.option_strings]
    assert len(flags) > 2
    for flag in set(flags) | set(EXPECTED_FLAGS.get(command, [])):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", proc.stdout), flag


# --- train, eval, predict, plot on a real run -----------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """``numcnn train`` of LeNet-5 on 3000 MNIST images, 1 epoch; the folder it ran in."""
    cwd = tmp_path_factory.mktemp("cli")
    proc = numcnn("train", "--limit", 3000, "--test-limit", 1000, "--epochs", 1,
                  "--batch-size", 32, "--lr", 0.1, "--out", "run", "--no-download", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""   # no progress bar off a terminal, no warnings
    assert "test accuracy" in proc.stdout.splitlines()[-1]
    return cwd


def test_train_writes_metrics_and_checkpoints(trained):
    run = trained / "run"
    assert {"metrics.jsonl", "last.npz", "best.npz", "confusion.csv", "config.json"} <= {
        p.name for p in run.iterdir()}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
            "images_per_second"} <= set(rows[0])
    assert rows[0]["test_acc"] > 0.8
    for name in ("last.npz", "best.npz"):
        payload = checkpoint.load(run / name)
        assert payload["arch"] == "lenet5" and payload["epoch"] == 1
        assert payload["train_config"]["limit"] == 3000


def test_train_default_out_folder(tmp_path):
    proc = numcnn("train", "--limit", 64, "--test-limit", 20, "--epochs", 1, "--no-download",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "runs" / "lenet5-mnist" / "last.npz").is_file()


def _parse_eval(stdout: str) -> tuple[float, np.ndarray]:
    accuracy = float(re.search(r"accuracy (\d+\.\d+)%", stdout).group(1))
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    header = lines[start + 1].split()
    assert header == [str(k) for k in range(10)]
    rows = [line.split() for line in lines[start + 2:start + 12]]
    assert [r[0] for r in rows] == [str(k) for k in range(10)]
    return accuracy, np.array([[int(v) for v in r[1:]] for r in rows])


def test_eval_prints_accuracy_and_confusion_matrix(trained):
    proc = numcnn("eval", "run/best.npz", "--limit", 1000, cwd=trained)
    assert proc.returncode == 0, proc.stderr
    accuracy, confusion = _parse_eval(proc.stdout)
    _, labels = mnist_test_images(1000)
    assert confusion.shape == (10, 10)
    np.testing.assert_array_equal(confusion.sum(axis=1), np.bincount(labels, minlength=10))
    assert accuracy == pytest.approx(100 * np.trace(confusion) / 1000, abs=0.005)
    row = json.loads((trained / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert f"{accuracy:.2f}" == f"{100 * row['test_acc']:.2f}"   # the same test images
    assert "per-class accuracy" in proc.stdout and "lenet5 on mnist" in proc.stdout


def _parse_predictions(stdout: str) -> dict[str, tuple[str, list[tuple[str, float]]]]:
    out = {}
    for line in stdout.splitlines():
        m = re.fullmatch(r"(?P<name>.+): (?P<cls>\S+)  \((?P<ranked>.+)\)", line)
        assert m, line
        ranked = [(c, float(p)) for c, p in re.findall(r"(\S+) (\d+\.\d)%", m["ranked"])]
        out[m["name"]] = (m["cls"], ranked)
    return out


def test_predict_classifies_png_and_npy_images(trained):
    from PIL import Image

    images, labels = mnist_test_images(6)
    files = {
        "digit0.png": (lambda p: Image.fromarray(images[0]).save(p), labels[0]),
        "digit0.npy": (lambda p: np.save(p, images[0]), labels[0]),
        "digit1.npy": (lambda p: np.save(p, images[1] / 255.0), labels[1]),
        # dark ink on white paper, in color: inverted automatically
        "digit2_paper.png": (lambda p: Image.fromarray(255 - images[2]).convert("RGB").save(p),
                             labels[2]),
        "digit3_large.png": (lambda p: Image.fromarray(images[3]).resize(
            (112, 112), Image.Resampling.BICUBIC).save(p), labels[3]),
        "digit4.png": (lambda p: Image.fromarray(images[4]).save(p), labels[4]),
    }
    for name, (write, _) in files.items():
        write(trained / name)
    proc = numcnn("predict", "run/best.npz", *files, cwd=trained)
    assert proc.returncode == 0, proc.stderr
    predictions = _parse_predictions(proc.stdout)
    assert list(predictions) == list(files)
    for name, (_, label) in files.items():
        cls, ranked = predictions[name]
        assert cls == str(label), (name, proc.stdout)
        assert len(ranked) == 3 and ranked[0][0] == cls
        probs = [p for _, p in ranked]
        assert probs == sorted(probs, reverse=True) and 0 <= probs[-1] and probs[0] <= 100
        assert sum(probs) <= 100.2 and probs[0] > 50
    assert predictions["digit0.png"] == predictions["digit0.npy"]   # same pixels, same answer


def test_predict_top_k_probabilities_sum_to_one(trained):
    images, _ = mnist_test_images(1)
    np.save(trained / "one.npy", images[0])
    proc = numcnn("predict", "run/best.npz", "one.npy", "--top", 10, cwd=trained)
    assert proc.returncode == 0, proc.stderr
    _, ranked = _parse_predictions(proc.stdout)["one.npy"]
    assert sorted(c for c, _ in ranked) == [str(k) for k in range(10)]
    assert sum(p for _, p in ranked) == pytest.approx(100, abs=0.6)


def test_plot_writes_the_four_figures(trained, tmp_path):
    from PIL import Image

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    proc = numcnn("plot", run, "--no-download", cwd=tmp_path)   # the bundled data is there
    assert proc.returncode == 0, proc.stderr
    names = ["curves.png", "filters.png", "feature_maps.png", "confusion.png"]
    assert sorted(re.findall(r"wrote .*[/\\](\w+\.png)", proc.stdout)) == sorted(names)
    for name in names:
        path = run / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and min(img.size) >= 100, name


# --- errors a user can cause ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    """A folder with a valid (untrained) checkpoint, a digit and assorted bad files."""
    cwd = tmp_path_factory.mktemp("errors")
    save_checkpoint(cwd / "model.npz", models.get_model("lenet5"), None, None, TrainConfig(), 0)
    checkpoint.save(cwd / "nomodel.npz", {"epoch": 3})
    images, _ = mnist_test_images(1)
    np.save(cwd / "digit.npy", images[0])
    rng = np.random.default_rng(0)
    (cwd / "corrupt.npz").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    good = (cwd / "model.npz").read_bytes()
    (cwd / "truncated.npz").write_bytes(good[:len(good) // 2])
    (cwd / "notes.txt").write_text("not an image\n")
    (cwd / "noise.png").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())
    np.save(cwd / "wrong_shape.npy", np.zeros((32, 32), np.uint8))
    np.save(cwd / "nan.npy", np.full((28, 28), np.nan))
    out_of_range = np.full((28, 28), 100, np.int16)
    out_of_range[0, 0], out_of_range[5, 5] = -1, 300   # a uint8 cast would wrap to 255 and 44
    np.save(cwd / "out_of_range.npy", out_of_range)
    np.save(cwd / "float255.npy", np.full((28, 28), 255.0))   # floats are read as 0..1
    np.save(cwd / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (cwd / "empty").mkdir()
    (cwd / "norun").mkdir()
    (cwd / "broken").mkdir()
    (cwd / "broken" / "last.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    (cwd / "offline_run").mkdir()   # a run folder whose plots need the MNIST test set
    (cwd / "offline_run" / "metrics.jsonl").write_text(json.dumps(
        {"epoch": 1, "train_loss": 2.3, "train_acc": 0.1, "test_loss": 2.3, "test_acc": 0.1}) + "\n")
    shutil.copy(cwd / "model.npz", cwd / "offline_run" / "last.npz")
    return cwd


@pytest.mark.parametrize("args, fragment", [
    (["train", "--data-dir", "empty", "--no-download", "--limit", 10],
     "does not hold the mnist data set"),
    (["eval", "missing.npz"], "missing.npz does not exist"),
    (["predict", "missing.npz", "digit.npy"], "missing.npz does not exist"),
    (["eval", "corrupt.npz"], "corrupt.npz is not a readable numcnn checkpoint"),
    (["eval", "truncated.npz"], "truncated.npz is not a readable numcnn checkpoint"),
    (["eval", "nomodel.npz"], "nomodel.npz holds no model"),
    (["eval", "digit.npy"], "digit.npy is not a numcnn checkpoint"),
    (["predict", "digit.npy", "model.npz"], "digit.npy is not a numcnn checkpoint"),
    (["predict", "model.npz", "nope.png"], "image nope.png does not exist"),
    (["predict", "model.npz", "digit.npy", "notes.txt"], "notes.txt is not a readable image"),
    (["predict", "model.npz", "noise.png"], "noise.png is not a readable image"),
    (["predict", "model.npz", "empty"], "empty is not a readable image"),
    (["predict", "model.npz", "wrong_shape.npy"], "expected a 28x28 image"),
    (["predict", "model.npz", "nan.npy"], "NaN"),
    (["predict", "model.npz", "digit.npy", "out_of_range.npy"],
     "out_of_range.npy: integer pixel values must be in 0..255, found -1..300 (dtype int16)"),
    (["predict", "model.npz", "float255.npy"],
     "float255.npy: float pixel values must be in 0..1, found 255..255"),
    (["predict", "model.npz", "objects.npy"], "objects.npy is not a readable .npy"),
    (["train", "--lr", "1e300", "--limit", 128, "--test-limit", 50, "--out", "nan"],
     "the training loss became nan"),
    (["train", "--resume", "--out", "broken", "--limit", 64, "--test-limit", 10],
     "last.npz is not a readable numcnn checkpoint"),
    (["train", "--model", "convnet", "--activation", "relu"], "--activation applies"),
    (["train", "--model", "lenet5", "--width", 8], "--width applies"),
    (["plot", "norun"], "metrics.jsonl does not exist"),
    (["plot", "nowhere"], "nowhere is not a folder"),
])
def test_user_errors_end_with_one_line(untrained, args, fragment):
    assert_user_error(numcnn(*args, cwd=untrained), fragment)


@pytest.mark.parametrize("command, files", [
    (["train", "--limit", 10], "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"),
    (["eval", "model.npz"], "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"),
    (["plot", "offline_run"], "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"),
])
def test_no_download_reports_missing_data_in_one_line(untrained, tmp_path, command, files):
    """Every command that reads a data set takes --no-download, with train's one-line error:
    the folder searched, the files it lacks, how to provide them; nothing is fetched or drawn."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    proc = numcnn(*command, "--data-dir", data_dir, "--no-download", cwd=untrained)
    line = assert_user_error(proc, f"data directory {data_dir} does not hold the mnist data set")
    assert f"{data_dir / 'mnist'} lacks {files}" in line
    assert "Copy the files there" in line and "allow downloading" in line
    assert list(data_dir.iterdir()) == []
    assert not list((untrained / "offline_run").glob("*.png"))


def test_predict_accepts_integer_npy_within_0_255(untrained):
    """Integer images of any dtype are read as they are when their values fit 0..255."""
    digit = np.load(untrained / "digit.npy")
    np.save(untrained / "digit_int64.npy", digit.astype(np.int64))
    proc = numcnn("predict", "model.npz", "digit.npy", "digit_int64.npy", cwd=untrained)
    assert proc.returncode == 0, proc.stderr
    predictions = _parse_predictions(proc.stdout)
    assert predictions["digit.npy"] == predictions["digit_int64.npy"]


@pytest.mark.parametrize("args, fragment", [
    (["train", "--model", "resnet"], "invalid choice"),
    (["train", "--epochs", "0"], "expected a positive integer"),
    (["train", "--lr", "-1"], "expected a positive number"),
    (["train", "--lr", "nan"], "expected a positive number"),
    (["train", "--momentum", "nan"], "argument --momentum: expected a finite number >= 0"),
    (["train", "--weight-decay", "-1"], "argument --weight-decay: expected a finite number >= 0"),
    (["train", "--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
    (["frobnicate"], "invalid choice"),
    (["predict", "model.npz"], "required"),
])
def test_usage_errors_exit_2(tmp_path, args, fragment):
    assert_usage_error(numcnn(*args, cwd=tmp_path), fragment)


def test_resuming_with_another_model_fails_cleanly_and_keeps_the_run(trained, tmp_path):
    """Resuming a lenet5 run as a convnet fails cleanly and leaves the run as it was."""
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    before = (run / "last.npz").read_bytes()
    proc = numcnn("train", "--model", "convnet", "--resume", "--out", run, "--limit", 64,
                  "--test-limit", 10, "--epochs", 2, cwd=tmp_path)
    assert_user_error(proc, "holds a run trained with --model lenet5, not --model convnet")
    assert (run / "last.npz").read_bytes() == before


# --- the run folder: never overwritten, resumed as it was started --------------------------------

TINY = ["--limit", 64, "--test-limit", 20, "--batch-size", 32, "--no-download"]


def test_train_never_overwrites_a_run_unless_asked(trained, tmp_path):
    """Rerunning train on a run's folder is one error line naming the folder and both options;
    the run stays as it was. --overwrite replaces it."""
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    proc = numcnn("train", *TINY, "--epochs", 1, "--out", "run", cwd=tmp_path)
    line = assert_user_error(proc, "run already holds a run")
    assert "--resume" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    proc = numcnn("train", *TINY, "--epochs", 1, "--out", "run", "--overwrite", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.load(run / "best.npz")["train_config"]["limit"] == 64


def test_resume_continues_the_run_with_its_saved_settings(tmp_path):
    proc = numcnn("train", *TINY, "--epochs", 1, "--activation", "relu", "--seed", 4,
                  "--out", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = numcnn("train", "--out", "run", "--resume", "--activation", "tanh", cwd=tmp_path)
    assert_user_error(proc, "run holds a run trained with --activation relu, not --activation "
                            "tanh")
    proc = numcnn("train", "--out", "run", "--resume", "--epochs", 2, "--no-download",
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "64 train / 20 test images" in proc.stdout and "re-planning" in proc.stdout
    payload = checkpoint.load(tmp_path / "run" / "last.npz")
    assert payload["epoch"] == 2 and payload["model_config"]["activation"] == "relu"
    assert payload["train_config"]["seed"] == 4
