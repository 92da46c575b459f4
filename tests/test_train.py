"""Training on real MNIST slices: learning, determinism, exact resume, divergence, dtypes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from numcnn import checkpoint, data, rundir, train
from numcnn import random as nc_random
from numcnn.autograd import Tensor, no_grad
from numcnn.train import TrainConfig, TrainingDiverged, fit, load_model

REQUIRED_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
                 "images_per_second"}
TIMING_KEYS = {"seconds", "images_per_second"}


def make_config(out, **overrides) -> TrainConfig:
    """A small, quick run: 160 training and 100 test images of MNIST."""
    options = {"limit": 160, "test_limit": 100, "epochs": 2, "batch_size": 32, "out": str(out),
               "progress": False, "download": False}
    options.update(overrides)
    return TrainConfig(**options)


def run(config: TrainConfig) -> dict:
    return fit(config, log=lambda line: None)


def read_rows(out) -> list[dict]:
    lines = (Path(out) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


def assert_bit_identical(a, b, where="/"):
    """Nested checkpoint payloads equal bit for bit (arrays: dtype, shape and bytes)."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), f"{where} differs"
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_bit_identical(a[k], b[k], f"{where}{k}/")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_bit_identical(x, y, f"{where}{i}/")
    else:
        assert a == b, where


def assert_same_training_state(out_a, out_b, name="last.npz"):
    """Model, optimizer, scheduler, epoch and RNG state of two checkpoints are identical."""
    a, b = checkpoint.load(Path(out_a) / name), checkpoint.load(Path(out_b) / name)
    for key in ("arch", "model_config", "epoch", "model_state", "optimizer", "scheduler",
                "rng_state"):
        assert_bit_identical(a[key], b[key], f"{key}/")


def assert_parameters_differ(out_a, out_b):
    a = checkpoint.load(Path(out_a) / "last.npz")["model_state"]
    b = checkpoint.load(Path(out_b) / "last.npz")["model_state"]
    assert any(a[k].tobytes() != b[k].tobytes() for k in a)


# --- a real run: LeNet-5 on 3000 images ---------------------------------------------------------

@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lenet5")
    config = make_config(out, limit=3000, test_limit=1000, epochs=1, lr=0.1)
    lines: list[str] = []
    result = fit(config, log=lines.append)
    return out, config, result, lines


def test_lenet5_learns_mnist_far_above_chance(lenet_run):
    _, _, result, lines = lenet_run
    assert result["test_acc"] > 0.80      # chance is 0.10
    assert result["train_acc"] > 0.5
    assert result["test_loss"] < 1.0      # chance is log(10) = 2.30
    assert "test accuracy" in lines[-1]


def test_metrics_jsonl_has_one_row_per_epoch_with_the_required_keys(lenet_run):
    out, config, result, _ = lenet_run
    rows = read_rows(out)
    assert len(rows) == config.epochs
    row = rows[0]
    assert REQUIRED_KEYS <= set(row)
    assert row["epoch"] == 1 and isinstance(row["epoch"], int)
    for key in REQUIRED_KEYS - {"epoch"}:
        assert isinstance(row[key], float) and math.isfinite(row[key]), key
    assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1
    assert row["lr"] == pytest.approx(0.1)   # the rate at the start of the epoch
    assert row["seconds"] > 0 and row["images_per_second"] > 0
    assert len(row["per_class_acc"]) == 10
    assert row == result


def test_run_folder_holds_checkpoints_confusion_and_config(lenet_run):
    out, config, result, _ = lenet_run
    assert {"metrics.jsonl", "last.npz", "best.npz", "confusion.csv", "config.json"} <= {
        p.name for p in out.iterdir()}
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    confusion = np.loadtxt(out / "confusion.csv", delimiter=",", dtype=np.int64)
    assert confusion.shape == (10, 10) and confusion.sum() == 1000
    assert np.trace(confusion) / 1000 == pytest.approx(result["test_acc"])
    assert json.loads((out / "config.json").read_text())["limit"] == config.limit
    payload = checkpoint.load(out / "best.npz")
    assert payload["arch"] == "lenet5" and payload["epoch"] == 1
    assert payload["dataset"] == "mnist"
    assert payload["train_config"]["lr"] == 0.1
    assert payload["metrics"]["test_acc"] == result["test_acc"]


def test_best_checkpoint_reproduces_the_recorded_test_metrics(lenet_run):
    out, config, result, _ = lenet_run
    model, payload = load_model(out / "best.npz")
    assert model.arch == "lenet5" and payload["epoch"] == 1
    base, _, normalize = train.preprocessing("lenet5", "mnist", False)
    test = data.MNIST(train=False, transform=base, limit=config.test_limit, download=False)
    evaluation = train.evaluate(model, data.DataLoader(test, 500, transform=normalize))
    assert evaluation["accuracy"] == result["test_acc"]
    assert evaluation["loss"] == pytest.approx(result["test_loss"], rel=1e-6)
    np.testing.assert_array_equal(
        evaluation["confusion"], np.loadtxt(out / "confusion.csv", delimiter=",", dtype=int))


# --- determinism ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """LeNet-5, SGD with Nesterov momentum, cosine schedule, 2 epochs without a break."""
    out = tmp_path_factory.mktemp("straight")
    run(make_config(out))
    return out


def test_same_seed_gives_identical_metrics_and_parameters(straight_run, tmp_path):
    run(make_config(tmp_path))
    assert without_timing(read_rows(tmp_path)) == without_timing(read_rows(straight_run))
    assert_same_training_state(straight_run, tmp_path)
    assert_same_training_state(straight_run, tmp_path, "best.npz")


def test_a_different_seed_gives_different_results(straight_run, tmp_path):
    run(make_config(tmp_path, seed=1))
    a, b = read_rows(straight_run), read_rows(tmp_path)
    assert [r["train_loss"] for r in a] != [r["train_loss"] for r in b]
    assert_parameters_differ(straight_run, tmp_path)


# --- exact resume ---------------------------------------------------------------------------

def _interrupt_in_second_evaluation(monkeypatch):
    """Ctrl-C after epoch 2 trained but before it was evaluated or saved."""
    real, calls = train.evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", evaluate)


def test_resume_after_an_interruption_matches_a_straight_run(straight_run, tmp_path, monkeypatch):
    config = make_config(tmp_path)
    with monkeypatch.context() as patch:
        _interrupt_in_second_evaluation(patch)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    assert checkpoint.load(tmp_path / "last.npz")["epoch"] == 1
    assert len(read_rows(tmp_path)) == 1
    nc_random.manual_seed(12345)   # the resumed run must not depend on the process's state
    config.resume = True
    result = run(config)
    assert result["epoch"] == 2
    assert without_timing(read_rows(tmp_path)) == without_timing(read_rows(straight_run))
    assert_same_training_state(straight_run, tmp_path)
    assert_same_training_state(straight_run, tmp_path, "best.npz")


def test_resume_extends_a_finished_run_exactly(tmp_path):
    """1 epoch, then resume=True with epochs=2 (Adam, constant rate) == 2 epochs straight."""
    options = {"optimizer": "adam", "scheduler": "none"}
    run(make_config(tmp_path / "a", **options))
    run(make_config(tmp_path / "b", epochs=1, **options))
    assert len(read_rows(tmp_path / "b")) == 1
    run(make_config(tmp_path / "b", resume=True, **options))
    assert without_timing(read_rows(tmp_path / "b")) == without_timing(read_rows(tmp_path / "a"))
    assert_same_training_state(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_resume_with_a_larger_total_follows_the_new_schedule(tmp_path, scheduler):
    """Extending a finished run re-plans the schedule for the new total: epoch 2 starts at the
    learning rate a 2-epoch run has at that step (the parameters differ, the schedule does not)."""
    run(make_config(tmp_path / "a", scheduler=scheduler))
    run(make_config(tmp_path / "b", epochs=1, scheduler=scheduler))
    run(make_config(tmp_path / "b", resume=True, scheduler=scheduler))
    straight, extended = read_rows(tmp_path / "a"), read_rows(tmp_path / "b")
    assert [r["epoch"] for r in extended] == [1, 2]
    assert extended[1]["lr"] == pytest.approx(straight[1]["lr"], rel=1e-9)
    assert extended[0]["lr"] == pytest.approx(straight[0]["lr"], rel=1e-9)


def test_resume_with_another_model_is_refused(straight_run, tmp_path):
    for name in ("last.npz", "metrics.jsonl"):
        (tmp_path / name).write_bytes((straight_run / name).read_bytes())
    with pytest.raises(ValueError, match="trained with --model lenet5, not --model convnet"):
        run(make_config(tmp_path, resume=True, model="convnet"))


def test_resume_of_a_finished_run_trains_nothing(straight_run, tmp_path):
    for name in ("last.npz", "best.npz", "metrics.jsonl"):
        (tmp_path / name).write_bytes((straight_run / name).read_bytes())
    before = (tmp_path / "last.npz").read_bytes()
    result = run(make_config(tmp_path, resume=True))
    assert result["epoch"] == 2
    assert (tmp_path / "last.npz").read_bytes() == before
    assert without_timing(read_rows(tmp_path)) == without_timing(read_rows(straight_run))


def test_resume_without_a_checkpoint_starts_from_scratch(straight_run, tmp_path):
    lines: list[str] = []
    fit(make_config(tmp_path, resume=True), log=lines.append)
    assert any("starting from scratch" in line for line in lines)
    assert_same_training_state(straight_run, tmp_path)


@pytest.mark.parametrize("after", ["best.npz", "last.npz"])
def test_an_interruption_between_the_files_of_an_epoch_loses_nothing(straight_run, tmp_path,
                                                                     monkeypatch, after):
    """Ctrl-C right after one file of epoch 2 is written: resuming gives the straight run."""
    straight = read_rows(straight_run)
    assert straight[1]["test_acc"] > straight[0]["test_acc"]   # epoch 2 writes best.npz
    real = train.save_checkpoint

    def save_checkpoint(path, model, optimizer, scheduler, config, epoch, *args, **kwargs):
        written = real(path, model, optimizer, scheduler, config, epoch, *args, **kwargs)
        if Path(path).name == after and epoch == 2:
            raise KeyboardInterrupt
        return written

    config = make_config(tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(train, "save_checkpoint", save_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    config.resume = True
    run(config)
    assert without_timing(read_rows(tmp_path)) == without_timing(straight)
    assert_same_training_state(straight_run, tmp_path)
    assert_same_training_state(straight_run, tmp_path, "best.npz")


# ConvNet with dropout, batch norm and augmentation: resuming must restore the RNG state.
CONVNET = {"model": "convnet", "model_options": {"width": 4, "hidden": 16}, "limit": 128,
           "test_limit": 100}


@pytest.fixture(scope="module")
def convnet_straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("convnet")
    run(make_config(out, **CONVNET))
    return out


def _interrupt_during_second_epoch(monkeypatch):
    """Ctrl-C after two steps of epoch 2: the model, optimizer and RNG have moved on."""
    real, calls = train.train_epoch, []

    def train_epoch(model, loader, optimizer, scheduler=None, progress=None):
        calls.append(1)
        if len(calls) == 2:
            batches = iter(loader)
            real(model, [next(batches), next(batches)], optimizer, scheduler)
            raise KeyboardInterrupt
        return real(model, loader, optimizer, scheduler, progress)

    monkeypatch.setattr(train, "train_epoch", train_epoch)


def test_convnet_resume_restores_dropout_and_augmentation_randomness(convnet_straight, tmp_path,
                                                                     monkeypatch):
    config = make_config(tmp_path, **CONVNET)
    with monkeypatch.context() as patch:
        _interrupt_during_second_epoch(patch)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    assert checkpoint.load(tmp_path / "last.npz")["epoch"] == 1
    config.resume = True
    run(config)
    assert without_timing(read_rows(tmp_path)) == without_timing(read_rows(convnet_straight))
    assert_same_training_state(convnet_straight, tmp_path)
    state = checkpoint.load(tmp_path / "last.npz")["model_state"]
    assert any("running_mean" in k for k in state)   # batch-norm statistics were compared too


def test_convnet_resume_without_the_rng_state_differs(convnet_straight, tmp_path, monkeypatch):
    """Control for the test above: with the generator state not restored, results differ."""
    config = make_config(tmp_path, **CONVNET)
    with monkeypatch.context() as patch:
        _interrupt_during_second_epoch(patch)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    monkeypatch.setattr(nc_random, "set_rng_state", lambda state: None)
    config.resume = True
    run(config)
    assert_parameters_differ(convnet_straight, tmp_path)


# --- divergence ---------------------------------------------------------------------------------

def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss, real_evaluate = train.F.cross_entropy, train.evaluate
    seen = {"evaluations": 0, "poisoned_calls": 0, "last": None}

    def evaluate(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        seen["evaluations"] += 1
        return result

    def cross_entropy(logits, target, *args, **kwargs):
        loss = real_loss(logits, target, *args, **kwargs)
        if seen["evaluations"] == 0:
            return loss
        if seen["last"] is None:   # epoch 1 and its checkpoint are complete
            seen["last"] = (tmp_path / "last.npz").read_bytes()
        seen["poisoned_calls"] += 1
        # the second batch of epoch 2 gives NaN, after one more (good) step
        return loss * float("nan") if seen["poisoned_calls"] >= 2 else loss

    config = make_config(tmp_path, limit=128, test_limit=100)
    with monkeypatch.context() as patch:
        patch.setattr(train, "evaluate", evaluate)
        patch.setattr(train.F, "cross_entropy", cross_entropy)
        with pytest.raises(TrainingDiverged, match=r"nan.*--lr"):
            run(config)
    assert seen["poisoned_calls"] == 2
    assert (tmp_path / "last.npz").read_bytes() == seen["last"]
    model, payload = load_model(tmp_path / "last.npz")
    assert payload["epoch"] == 1
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    assert [r["epoch"] for r in read_rows(tmp_path)] == [1]
    config.resume = True
    assert run(config)["epoch"] == 2   # the kept checkpoint is a good starting point


def test_a_huge_learning_rate_diverges_before_any_checkpoint(tmp_path):
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="loss became"):
        run(make_config(tmp_path, lr=1e300, limit=128, test_limit=50))
    assert not (tmp_path / "last.npz").exists()
    assert read_rows(tmp_path) == []


def test_weights_broken_by_an_epochs_last_step_are_not_saved_as_a_result(tmp_path):
    # one batch: its loss is finite, its step makes the weights inf, the test loss is nan
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="test loss became nan"):
        run(make_config(tmp_path, lr=1e308, limit=64, batch_size=64, test_limit=50))
    assert not (tmp_path / "last.npz").exists()
    assert not (tmp_path / "best.npz").exists()
    assert read_rows(tmp_path) == []


# --- dtypes ---------------------------------------------------------------------------------------

def test_float64_training_keeps_everything_in_float64(straight_run, tmp_path, monkeypatch):
    real_loss, logits_dtypes = train.F.cross_entropy, set()

    def cross_entropy(logits, *args, **kwargs):
        logits_dtypes.add(logits.data.dtype)
        return real_loss(logits, *args, **kwargs)

    monkeypatch.setattr(train.F, "cross_entropy", cross_entropy)
    run(make_config(tmp_path, dtype="float64", limit=64, test_limit=50, epochs=1))
    assert logits_dtypes == {np.dtype(np.float64)}
    payload = checkpoint.load(tmp_path / "last.npz")
    assert {v.dtype for v in payload["model_state"].values()} == {np.dtype(np.float64)}
    buffers = [v for s in payload["optimizer"]["state"].values() for v in s.values()
               if isinstance(v, np.ndarray)]
    assert buffers and {b.dtype for b in buffers} == {np.dtype(np.float64)}
    model, _ = load_model(tmp_path / "last.npz")
    assert {p.data.dtype for p in model.parameters()} == {np.dtype(np.float64)}
    with no_grad():
        assert model.eval()(Tensor(np.zeros((1, 1, 32, 32)))).data.dtype == np.float64
    # control: the default run is float32
    default = checkpoint.load(straight_run / "last.npz")["model_state"]
    assert {v.dtype for v in default.values()} == {np.dtype(np.float32)}


# --- checkpoints of models, configuration, preprocessing ----------------------------------------

def test_load_model_rejects_a_checkpoint_without_a_model(tmp_path):
    checkpoint.save(tmp_path / "c.npz", {"epoch": 1})
    with pytest.raises(checkpoint.CheckpointError, match="holds no model"):
        load_model(tmp_path / "c.npz")


@pytest.mark.parametrize("payload", [
    {"arch": "resnet", "model_config": {}, "model_state": {}},
    {"arch": "lenet5", "model_config": {"colour": True}, "model_state": {}},
    {"arch": "lenet5", "model_config": {}, "model_state": {}},
    {"arch": "lenet5", "model_config": {}, "model_state": {"conv1.weight": np.zeros(3)}},
])
def test_load_model_reports_a_model_it_cannot_rebuild(tmp_path, payload):
    checkpoint.save(tmp_path / "c.npz", payload)
    with pytest.raises(checkpoint.CheckpointError, match="c.npz"):
        load_model(tmp_path / "c.npz")


@pytest.mark.parametrize("field, value", [
    ("model", "resnet"), ("dataset", "cifar"), ("optimizer", "rmsprop"), ("scheduler", "cyclic"),
    ("dtype", "float16"), ("epochs", 0), ("batch_size", -1), ("limit", 0), ("test_limit", 1.5),
    ("lr", 0.0), ("lr", math.nan), ("lr", math.inf),
])
def test_train_config_rejects_bad_values(tmp_path, field, value):
    config = make_config(tmp_path, **{field: value})
    with pytest.raises(ValueError, match=field):
        config.validate()
    with pytest.raises(ValueError):
        fit(config, log=lambda line: None)
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize("model, size", [("lenet5", 32), ("convnet", 28)])
def test_preprocessing_pads_to_the_model_input_and_normalizes(model, size):
    base, train_tf, test_tf = train.preprocessing(model, "mnist", augment=True)
    images = data.MNIST(train=True, limit=512, download=False).data
    x = test_tf.batch(base.batch(images))
    assert x.shape == (512, 1, size, size) and x.dtype == np.float32
    inner = x[..., (size - 28) // 2:(size + 28) // 2, (size - 28) // 2:(size + 28) // 2]
    assert abs(inner.mean()) < 0.1 and abs(inner.std() - 1) < 0.1   # MNIST mean/std
    rng = np.random.default_rng(0)
    shifted = train_tf.batch(base.batch(images), rng=rng)
    assert shifted.shape == x.shape and not np.array_equal(shifted, x)
    assert train.preprocessing(model, "mnist", augment=False, dtype=np.float64)[0].batch(
        images[:2]).dtype == np.float64


# --- the run folder: never overwritten, resumed with its own settings (issue: reliability) -------

def test_a_folder_that_holds_a_run_is_never_overwritten(straight_run, tmp_path):
    """Training again into a run's folder is refused; the run stays byte for byte."""
    for name in ("last.npz", "best.npz", "metrics.jsonl", "config.json"):
        (tmp_path / name).write_bytes((straight_run / name).read_bytes())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(rundir.RunExists, match=r"already holds a run .*--resume.*--overwrite"):
        run(make_config(tmp_path, epochs=1, limit=64))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_overwrite_replaces_the_run(straight_run, tmp_path):
    for name in ("last.npz", "best.npz", "metrics.jsonl", "confusion.csv"):
        (tmp_path / name).write_bytes((straight_run / name).read_bytes())
    (tmp_path / "notes.txt").write_text("mine")          # not a run file: kept
    run(make_config(tmp_path, epochs=1, overwrite=True))
    assert [r["epoch"] for r in read_rows(tmp_path)] == [1]
    assert checkpoint.load(tmp_path / "last.npz")["epoch"] == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_and_overwrite_exclude_each_other(tmp_path):
    with pytest.raises(ValueError, match="exclude each other"):
        run(make_config(tmp_path, resume=True, overwrite=True))


def test_only_rank_0_creates_the_run_folder(tmp_path):
    """Under MPI the other ranks never touch --out (they only wait for rank 0's verdict)."""
    class Stop(Exception):
        pass

    class OtherRank:
        is_root = False

        def agree(self, fn, root_only=False):
            if fn is not None:
                raise Stop

    out = tmp_path / "new" / "run"
    with pytest.raises(Stop):
        train._fit(make_config(out), dp=OtherRank())
    assert not (tmp_path / "new").exists()


def test_resume_cuts_a_torn_metrics_line_and_matches_a_straight_run(straight_run, tmp_path,
                                                                   capsys):
    """A torn last line (disk full or a kill during an append) does not block --resume: the
    checkpoint is the truth, the line is dropped with one warning naming the file."""
    config = make_config(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        _interrupt_in_second_evaluation(patch)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 2, "train_loss": 2.1, "train_a')
    capsys.readouterr()
    config.resume = True
    fit(config, log=lambda line: None)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "metrics.jsonl" in err[0] and "torn" in err[0], err
    assert without_timing(read_rows(tmp_path)) == without_timing(read_rows(straight_run))
    assert_same_training_state(straight_run, tmp_path)


def test_resume_drops_metrics_lines_after_the_checkpoint(straight_run, tmp_path, monkeypatch):
    """A kill between the metrics write and the checkpoint leaves a line the checkpoint does not
    hold; the resumed run redoes that epoch and writes it once."""
    config = make_config(tmp_path)
    with monkeypatch.context() as patch:
        _interrupt_in_second_evaluation(patch)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    later = (straight_run / "metrics.jsonl").read_text().splitlines()[1]
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write(later.replace('"train_loss": ', '"train_loss": 1') + "\n")
    warnings: list[str] = []
    config.resume = True
    fit(config, log=lambda line: None, warn=warnings.append)
    assert len(warnings) == 1 and "1 line(s) of epochs after 1" in warnings[0], warnings
    assert without_timing(read_rows(tmp_path)) == without_timing(read_rows(straight_run))
    assert_same_training_state(straight_run, tmp_path)


def test_a_malformed_metrics_line_in_the_middle_is_an_error_naming_file_and_line(straight_run,
                                                                                 tmp_path):
    for name in ("last.npz", "best.npz", "config.json"):
        (tmp_path / name).write_bytes((straight_run / name).read_bytes())
    rows = (straight_run / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text("[1, 2, 3]\n" + rows[1] + "\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl line 1 is a JSON list"):
        run(make_config(tmp_path, resume=True))


def _cli_config(*flags):
    from numcnn.cli import build_parser, train_config

    return train_config(build_parser().parse_args(["train", *map(str, flags)]))


@pytest.fixture(scope="module")
def relu_run(tmp_path_factory):
    """A run with settings far from the defaults: what --resume must keep."""
    out = tmp_path_factory.mktemp("relu")
    config = _cli_config("--out", out, "--activation", "relu", "--limit", 96, "--test-limit",
                         40, "--epochs", 1, "--seed", 3, "--batch-size", 48, "--optimizer",
                         "adam", "--dtype", "float64", "--no-download", "--no-progress")
    run(config)
    return out


def test_resume_without_flags_continues_with_the_saved_settings(relu_run):
    config = _cli_config("--out", relu_run, "--resume")
    assert (config.model_options, config.limit, config.test_limit, config.epochs,
            config.seed, config.batch_size, config.optimizer, config.dtype) == (
        {"activation": "relu"}, 96, 40, 1, 3, 48, "adam", "float64")
    assert config.lr == 1e-3 and config.resume


@pytest.mark.parametrize("flags, saved, given", [
    (["--activation", "tanh"], "--activation relu", "--activation tanh"),
    (["--dataset", "fashion-mnist"], "--dataset mnist", "--dataset fashion-mnist"),
    (["--seed", 0], "--seed 3", "--seed 0"),
    (["--batch-size", 64], "--batch-size 48", "--batch-size 64"),
    (["--dtype", "float32"], "--dtype float64", "--dtype float32"),
    (["--limit", 12000], "--limit 96", "--limit 12000"),
    (["--optimizer", "sgd"], "--optimizer adam", "--optimizer sgd"),
    (["--lr", 0.1], "--lr 0.001", "--lr 0.1"),
    (["--augment"], "--no-augment", "--augment"),
    (["--model", "convnet"], "--model lenet5", "--model convnet"),
])
def test_resume_refuses_a_flag_that_contradicts_the_run(relu_run, flags, saved, given):
    with pytest.raises(rundir.RunMismatch) as info:
        _cli_config("--out", relu_run, "--resume", *flags)
    message = str(info.value)
    assert f"trained with {saved}, not {given}" in message and str(relu_run) in message


def test_resume_accepts_flags_repeated_with_the_same_value(relu_run):
    config = _cli_config("--out", relu_run, "--resume", "--activation", "relu", "--seed", 3,
                         "--limit", 96, "--lr", 0.001, "--dtype", "float64", "--no-augment")
    assert config.seed == 3 and config.model_options == {"activation": "relu"}


def test_resume_extends_the_run_and_says_the_schedule_is_replanned(relu_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(relu_run, out)
    lines: list[str] = []
    fit(_cli_config("--out", out, "--resume", "--epochs", 2), log=lines.append)
    assert any("planned for 1 epochs; re-planning" in line for line in lines), lines
    assert [r["epoch"] for r in read_rows(out)] == [1, 2]
    document = json.loads((out / "config.json").read_text())
    assert document["epochs"] == 2 and document["limit"] == 96
    assert document["history"] == [{"after_epoch": 0, "epochs": 1},
                                   {"after_epoch": 1, "epochs": 2}]
    model_config = checkpoint.load(out / "last.npz")["model_config"]
    assert model_config["activation"] == "relu"
    with pytest.raises(rundir.RunMismatch, match="already trained 2 epochs; --epochs 1"):
        _cli_config("--out", out, "--resume", "--epochs", 1) and run(
            _cli_config("--out", out, "--resume", "--epochs", 1))


# --- early stopping and the learning rate of every step -----------------------------------------

def _scripted_accuracy(monkeypatch, accuracies, stop_at=None):
    """evaluate() reports the given test accuracies in turn (Ctrl-C at call ``stop_at``)."""
    real, calls = train.evaluate, []

    def evaluate(*args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        result = real(*args, **kwargs)
        result["accuracy"] = accuracies[len(calls) - 1]
        return result

    monkeypatch.setattr(train, "evaluate", evaluate)


def test_patience_stops_when_the_test_accuracy_stalls(tmp_path, monkeypatch):
    _scripted_accuracy(monkeypatch, [0.5, 0.6, 0.6, 0.55, 0.7, 0.8])
    lines: list[str] = []
    fit(make_config(tmp_path, limit=64, epochs=6, patience=2), log=lines.append)
    rows = read_rows(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["epochs_without_improvement"] for r in rows] == [0, 0, 1, 2]
    assert rows[-1]["stopped_early"] and not any("stopped_early" in r for r in rows[:-1])
    assert any("early stopping" in line and "epoch 2" in line for line in lines)
    assert checkpoint.load(tmp_path / "best.npz")["epoch"] == 2
    # resuming a run that stopped early trains nothing more
    before = (tmp_path / "last.npz").read_bytes()
    lines.clear()
    fit(make_config(tmp_path, limit=64, epochs=6, patience=2, resume=True), log=lines.append)
    assert any("stopped early" in line for line in lines)
    assert (tmp_path / "last.npz").read_bytes() == before


def test_patience_counts_on_across_a_resume(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _scripted_accuracy(patch, [0.5, 0.6, 0.6], stop_at=4)
        with pytest.raises(KeyboardInterrupt):
            run(make_config(tmp_path, limit=64, epochs=6, patience=2))
    assert checkpoint.load(tmp_path / "last.npz")["epoch"] == 3
    _scripted_accuracy(monkeypatch, [0.55, 0.9])
    run(make_config(tmp_path, limit=64, epochs=6, patience=2, resume=True))
    rows = read_rows(tmp_path)
    assert [r["epochs_without_improvement"] for r in rows] == [0, 0, 1, 2]
    assert rows[-1]["stopped_early"]


def test_patience_flag_reaches_the_config():
    assert _cli_config("--patience", 3, "--log-lr").patience == 3
    assert _cli_config("--log-lr").log_lr is True and _cli_config().log_lr is False


def test_log_lr_records_the_rate_of_every_step_and_resumes_exactly(tmp_path, monkeypatch):
    """lr_steps: the rate each step used (the cosine schedule, stepped per batch); a resumed
    run records exactly what a straight one does."""
    straight = tmp_path / "straight"
    run(make_config(straight, log_lr=True))
    rows = read_rows(straight)
    steps = math.ceil(160 / 32)
    assert [len(r["lr_steps"]) for r in rows] == [steps, steps]
    lrs = rows[0]["lr_steps"] + rows[1]["lr_steps"]
    assert lrs[0] == rows[0]["lr"] == 0.05 and rows[1]["lr_steps"][0] == rows[1]["lr"]
    expected = [0.05 * (1 + math.cos(math.pi * t / (2 * steps))) / 2 for t in range(2 * steps)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    config = make_config(tmp_path / "resumed", log_lr=True)
    with monkeypatch.context() as patch:
        _interrupt_in_second_evaluation(patch)
        with pytest.raises(KeyboardInterrupt):
            run(config)
    config.resume = True
    run(config)
    assert without_timing(read_rows(tmp_path / "resumed")) == without_timing(rows)


# --- no made-up numbers ---------------------------------------------------------------------------

def test_evaluate_refuses_an_empty_test_set():
    from numcnn import models

    with pytest.raises(ValueError, match="no test data"):
        train.evaluate(models.get_model("lenet5"), [])


def test_a_failed_overwrite_keeps_the_old_run(straight_run, tmp_path):
    """--overwrite deletes the old run only once the new one has its data and model."""
    for name in ("last.npz", "best.npz", "metrics.jsonl"):
        (tmp_path / name).write_bytes((straight_run / name).read_bytes())
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileNotFoundError, match="does not hold the mnist data set"):
        run(make_config(tmp_path, overwrite=True, data_dir=str(tmp_path / "nowhere")))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_resume_with_a_flag_of_another_model_says_so(relu_run):
    from numcnn.cli import UserError

    with pytest.raises(UserError, match="--width applies to --model convnet only"):
        _cli_config("--out", relu_run, "--resume", "--width", 8)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_momentum_with_an_optimizer_that_has_none_is_an_error(tmp_path, optimizer):
    from numcnn.cli import UserError

    with pytest.raises(UserError, match=f"--momentum applies to --optimizer sgd only, not {optimizer}"):
        _cli_config("--out", tmp_path / "run", "--optimizer", optimizer, "--momentum", 0.5)
    assert _cli_config("--out", tmp_path / "run", "--optimizer", "sgd", "--momentum", 0.5).momentum == 0.5
