"""TrainConfig: settings an optimizer does not take are refused, defaults are resolved, and the
settings of a stored run are read back (numcnn.trainconfig)."""
from __future__ import annotations

import json

import pytest

from numcnn import nn, optim, rundir
from numcnn.cli import UserError, build_parser, train_config
from numcnn.train import build_optimizer, fit
from numcnn.trainconfig import DEFAULT_MOMENTUM, OPTIMIZERS, TrainConfig


def _cli_config(*flags):
    return train_config(build_parser().parse_args(["train", *map(str, flags)]))


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_momentum_for_an_optimizer_that_takes_none_is_refused(tmp_path, optimizer, momentum):
    config = TrainConfig(optimizer=optimizer, momentum=momentum, out=str(tmp_path / "run"))
    message = (f"momentum={momentum} applies to optimizer 'sgd' only, not '{optimizer}', which "
               f"takes no momentum")
    with pytest.raises(ValueError, match=message):
        config.validate()
    with pytest.raises(ValueError, match=message):
        fit(config, log=lambda line: None)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_the_command_line_and_the_api_refuse_the_same_optimizers_momentum(tmp_path):
    out = tmp_path / "run"
    for optimizer in OPTIMIZERS:
        try:
            _cli_config("--out", out, "--optimizer", optimizer, "--momentum", 0.5)
            cli_refuses = False
        except UserError as err:
            cli_refuses = True
            assert f"--momentum applies to --optimizer sgd only, not {optimizer}" in str(err)
        try:
            TrainConfig(optimizer=optimizer, momentum=0.5, out=str(out)).validate()
            api_refuses = False
        except ValueError:
            api_refuses = True
        assert cli_refuses == api_refuses == (optimizer != "sgd"), optimizer


def test_sgd_takes_the_default_nesterov_momentum_and_adam_none():
    sgd = TrainConfig().resolved()
    assert sgd.momentum == DEFAULT_MOMENTUM == 0.9
    opt = build_optimizer(sgd, nn.Linear(2, 1).parameters(), lr=0.1)
    assert isinstance(opt, optim.SGD)
    assert opt.param_groups[0]["momentum"] == 0.9 and opt.param_groups[0]["nesterov"]
    plain = build_optimizer(TrainConfig(momentum=0.0).resolved(), nn.Linear(2, 1).parameters(),
                            lr=0.1)
    assert plain.param_groups[0]["momentum"] == 0.0 and not plain.param_groups[0]["nesterov"]
    for optimizer in ("adam", "adamw"):
        config = TrainConfig(optimizer=optimizer).resolved()
        assert config.momentum is None
        config.validate()
    assert TrainConfig(momentum=0.5).resolved().momentum == 0.5


def test_the_settings_of_a_stored_run_skip_what_its_optimizer_does_not_take(tmp_path):
    """Runs stored ``momentum: 0.9`` for every optimizer; an adam run resumes all the same."""
    saved = {"optimizer": "adam", "momentum": 0.9, "lr": 1e-3, "history": []}
    assert TrainConfig.from_saved(saved) == TrainConfig(optimizer="adam", lr=1e-3)
    assert TrainConfig.from_saved({"optimizer": "sgd", "momentum": 0.5}).momentum == 0.5
    (tmp_path / "config.json").write_text(json.dumps({**saved, "out": str(tmp_path)}))
    config = rundir.resume_config(tmp_path, {"resume": True, "out": str(tmp_path)})
    assert config is not None and config.optimizer == "adam" and config.momentum is None
    config.validate()
    rundir.check_same_run(saved, TrainConfig(optimizer="adam", lr=1e-3), tmp_path)


@pytest.mark.parametrize(("settings", "message"), [
    ({"momentum": -0.5}, "momentum must be a finite number >= 0, got -0.5"),
    ({"momentum": float("nan")}, "momentum must be a finite number >= 0, got nan"),
    ({"weight_decay": -1e-4}, "weight_decay must be a finite number >= 0, got -0.0001"),
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number >= 0, got inf"),
    ({"weight_decay": "0.1"}, "weight_decay must be a finite number >= 0, got '0.1'"),
    ({"epochs": True}, "epochs must be a positive int, got True"),
    ({"lr": True}, "lr must be a positive number, got True"),
    ({"seed": "x"}, "seed must be an int >= 0, got 'x'"),
    ({"seed": -1}, "seed must be an int >= 0, got -1"),
    ({"model_options": [1]}, "model_options must be a dict of the model's keyword arguments"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, settings, message):
    config = TrainConfig(out=str(tmp_path / "run"), **settings)
    with pytest.raises((ValueError, TypeError), match=message):
        config.validate()
    with pytest.raises((ValueError, TypeError), match="must be"):
        fit(config, log=lambda line: None)
    assert not (tmp_path / "run").exists()


def test_good_numbers_of_every_kind_are_accepted():
    import numpy as np
    TrainConfig(momentum=0.0, weight_decay=np.float32(1e-4), seed=np.int64(3), lr=0.1,
                epochs=np.int64(2)).validate()
