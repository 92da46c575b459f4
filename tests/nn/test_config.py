"""``Module.get_config``: every layer describes the constructor arguments that rebuild it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from numcnn import nn

#: One instance of every layer of numcnn.nn, with arguments away from their defaults where
#: there are any, so that a setting left out of a config changes the rebuilt layer.
LAYERS = [
    nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
    nn.Conv2d(2, 2, 3, padding="same", padding_mode="reflect"),
    nn.Conv1d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=False,
              padding_mode="circular"),
    nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, output_padding=1, groups=2, bias=False,
                       dilation=1),
    nn.Linear(3, 5, bias=False),
    nn.Flatten(2, 3),
    nn.Identity(54, unused=True),
    nn.BatchNorm1d(3, eps=1e-3, momentum=None, affine=True, bias=False),
    nn.BatchNorm2d(4, momentum=0.3, affine=False, track_running_stats=False),
    nn.MaxPool2d(3, 1, 1, dilation=2, return_indices=True, ceil_mode=True),
    nn.AvgPool2d((2, 3), stride=1, padding=(1, 1), ceil_mode=True, count_include_pad=False,
                 divisor_override=5),
    nn.AdaptiveAvgPool2d((3, None)),
    nn.MaxUnpool2d((2, 3), stride=(1, 2), padding=1),
    nn.ReLU(inplace=True),
    nn.LeakyReLU(0.2, inplace=True),
    nn.Tanh(),
    nn.Sigmoid(),
    nn.Softmax(dim=1),
    nn.LogSoftmax(dim=0),
    nn.GELU("tanh"),
    nn.SiLU(inplace=True),
    nn.Softplus(2.0, 5.0),
    nn.Dropout(0.3, inplace=True),
    nn.Dropout2d(0.25),
    nn.Upsample(size=(6, 5), mode="bilinear", align_corners=True),
    nn.Upsample(scale_factor=2, mode="nearest", recompute_scale_factor=True),
    nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
    nn.MSELoss(reduction="none"),
]

#: Containers: their configuration is their children, which numcnn.io stores itself.
CONTAINERS = {nn.Sequential, nn.ModuleList}


def _state_shapes(module):
    return {k: v.shape for k, v in module.state_dict().items()}


def _settings(module) -> dict:
    """The public attributes a layer keeps (``kernel_size``, ``recompute_scale_factor``...);
    parameters and buffers live in the module's registries, not here."""
    return {k: v for k, v in vars(module).items() if not k.startswith("_")}


def test_every_layer_of_nn_is_listed():
    classes = {getattr(nn, name) for name in nn.__all__}
    layers = {c for c in classes if isinstance(c, type) and issubclass(c, nn.Module)}
    assert layers - CONTAINERS - {nn.Module} == {type(m) for m in LAYERS}


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    again = type(layer)(**config)
    assert repr(again) == repr(layer)
    assert _settings(again) == _settings(layer)
    assert _state_shapes(again) == _state_shapes(layer)
    assert again.get_config() == config


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_config_survives_json(layer):
    """What a file stores: JSON turns tuples into lists, which the layers take back as given."""
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer)(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    assert repr(again) == repr(layer)
    assert _settings(again) == _settings(layer)
    assert _state_shapes(again) == _state_shapes(layer)


@pytest.mark.parametrize("layer, config", [
    (nn.ReLU(), {}),
    (nn.LeakyReLU(), {"negative_slope": 0.01}),
    (nn.Dropout(), {"p": 0.5}),
    (nn.Conv2d(1, 2, 3), {"in_channels": 1, "out_channels": 2, "kernel_size": (3, 3),
                          "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1), "groups": 1,
                          "bias": True}),
    (nn.Upsample(scale_factor=2), {"size": None, "scale_factor": 2.0, "mode": "nearest",
                                   "align_corners": None}),
    (nn.BatchNorm2d(3, affine=False), {"num_features": 3, "eps": 1e-5, "momentum": 0.1,
                                       "affine": False, "track_running_stats": True,
                                       "bias": True}),
])
def test_defaults_added_later_are_left_out(layer, config):
    """inplace, Conv2d's padding_mode and Upsample's recompute_scale_factor are listed only when
    set: a default layer is described with the keys files have always held."""
    assert layer.get_config() == config


def test_a_module_without_constructor_arguments_is_described_by_nothing():
    class Square(nn.Module):
        def forward(self, x):
            return x * x

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    assert Square().get_config() == {} and Block().get_config() == {}
    assert nn.Module().get_config() == {}


def test_a_module_that_cannot_describe_itself_says_so():
    class Scaled(nn.Module):
        def __init__(self, factor, *, bias=True):
            super().__init__()
            self.factor = factor

    with pytest.raises(NotImplementedError,
                       match=r"Scaled does not describe its configuration: its constructor "
                             r"takes factor, bias; define Scaled.get_config\(\)"):
        Scaled(2.0).get_config()
    with pytest.raises(NotImplementedError, match="Sequential does not describe"):
        nn.Sequential(nn.ReLU()).get_config()


def test_a_subclass_inherits_its_base_description():
    class Wide(nn.Linear):
        pass

    layer = Wide(3, 4, bias=False)
    assert layer.get_config() == {"in_features": 3, "out_features": 4, "bias": False}
    assert np.shape(Wide(**layer.get_config()).weight.data) == (4, 3)


@pytest.mark.parametrize("make", [
    lambda m: m.ReLU(inplace=True), lambda m: m.LeakyReLU(0.2, inplace=True),
    lambda m: m.SiLU(inplace=True), lambda m: m.Softmax(), lambda m: m.LogSoftmax(dim=1),
    lambda m: m.GELU("tanh"), lambda m: m.Softplus(2.0, 5.0), lambda m: m.Linear(3, 2, False),
    lambda m: m.Flatten(0, 2), lambda m: m.AdaptiveAvgPool2d((3, None)),
])
def test_reprs_written_from_the_config_match_torch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nn)) == repr(make(torch.nn))
