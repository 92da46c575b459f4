"""Architecture specs in files: each layer's ``get_config`` under its class name, readable both
ways across versions; ``Module.save``/``load`` run through the serializer numcnn.io registers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import numcnn
from numcnn import io, nn
from numcnn.nn import module as module_mod

#: A Sequential holding every layer type, as ``io.model_spec`` described it before layers
#: described themselves (written by the type-by-type io of version 0.1.0): ``config`` is the
#: metadata string of such a file, ``repr`` the model it was written from.
OLD = json.loads((Path(__file__).parent / "fixtures" / "sequential_spec_v1.json").read_text())


def test_a_spec_written_by_the_earlier_io_still_builds_the_model():
    model = io.model_from_spec(OLD["arch"], json.loads(OLD["config"]))
    assert repr(model) == OLD["repr"]


def test_the_spec_written_now_has_the_earlier_keys_and_values():
    model = io.model_from_spec(OLD["arch"], json.loads(OLD["config"]))
    assert io.model_spec(model) == (OLD["arch"], json.loads(OLD["config"]))


def test_a_file_written_by_the_earlier_io_loads(tmp_path):
    pytest.importorskip("safetensors")
    weights = io.model_from_spec(OLD["arch"], json.loads(OLD["config"]))
    path = tmp_path / "old.safetensors"
    io.save_safetensors(weights, path, {"format": "numcnn", "format_version": "1",
                                        "arch": OLD["arch"], "config": OLD["config"]})
    again = nn.Module.load(path)
    assert repr(again) == OLD["repr"]
    for key, value in weights.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)


def test_every_layer_of_a_sequential_round_trips_through_json():
    """Lists come back as the tuples the layers hold (Upsample's size too)."""
    model = nn.Sequential(OrderedDict([
        ("resize", nn.Upsample(size=(6, 5), recompute_scale_factor=False)),
        ("unpool", nn.MaxUnpool2d((2, 3), padding=1)),
        ("act", nn.Sequential(nn.ReLU(inplace=True), nn.Dropout(0.2, inplace=True))),
        ("pool", nn.AdaptiveAvgPool2d((None, 2)))]))
    arch, config = io.model_spec(model)
    again = io.model_from_spec(arch, json.loads(json.dumps(config)))
    assert repr(again) == repr(model)
    assert config["layers"][0][1]["size"] == [6, 5]          # JSON types only


def test_spec_names_what_cannot_be_described():
    class Custom(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.width = width

    class Linear(nn.Linear):                 # a class named like numcnn's, but not numcnn's
        pass

    for layer, pattern in [
            (Custom(3), r"layer 'body.0' of type Custom"),
            (Linear(2, 2), r"layer 'body.0' of type Linear"),
            (nn.MSELoss(), r"layer 'body.0' of type MSELoss"),
            (nn.Module(), r"layer 'body.0' of type Module")]:
        with pytest.raises(TypeError, match=pattern):
            io.model_spec(nn.Sequential(OrderedDict(body=nn.Sequential(layer))))
    with pytest.raises(TypeError, match=r"layer '0' \(LeakyReLU\) is not JSON-able"):
        io.model_spec(nn.Sequential(nn.LeakyReLU(np.float32(0.5))))


def test_spec_refuses_a_layer_whose_get_config_is_missing(monkeypatch):
    def missing(self):
        raise NotImplementedError("Linear does not describe its configuration")

    monkeypatch.setattr(nn.Linear, "get_config", missing)
    with pytest.raises(TypeError, match="cannot describe layer '1': Linear does not describe"):
        io.model_spec(nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))


@pytest.mark.parametrize("spec, error, pattern", [
    ({"type": "Dense", "units": 3}, ValueError, r"unknown layer type 'Dense' at 'head'"),
    ({"type": "MSELoss"}, ValueError, r"unknown layer type 'MSELoss'"),
    ({"type": "Module"}, ValueError, r"unknown layer type 'Module'"),
    ({"type": "init"}, ValueError, r"unknown layer type 'init'"),
    ({"type": "Linear", "in_features": 2}, TypeError,
     r"layer 'head' cannot be built as Linear\(\*\*\{'in_features': 2\}\): .*out_features"),
    ({"type": "Linear", "in_features": 2, "out_features": 2, "units": 3}, TypeError,
     r"layer 'head' cannot be built as Linear.*'units'"),
    ({"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": [3, 3],
      "groups": 2}, ValueError,
     r"layer 'head' cannot be built as Conv2d.*in_channels=3 must be divisible by groups=2"),
    ({"units": 3}, TypeError, r"layer 'head' must be a dict with a 'type' entry"),
    ({"type": "Sequential", "layers": 5}, TypeError,
     r"the layers of Sequential 'head' must be a list of \[name, spec\] pairs, got 5"),
    ({"type": "Sequential", "layers": [], "stray": 1}, TypeError,
     r"Sequential 'head' got unexpected key\(s\) 'stray'; a Sequential spec holds only"),
    ({"type": "Sequential", "layers": [["relu", {"type": "ReLU"}], ["relu", {"type": "Tanh"}]]},
     ValueError, r"Sequential 'head' has more than one layer named 'relu'"),
    ({"type": "Sequential", "layers": [[0, {"type": "ReLU"}]]}, TypeError,
     r"the layers of 'head' must be named by strings, got the name 0"),
])
def test_bad_specs_are_refused_by_place(spec, error, pattern):
    with pytest.raises(error, match=pattern):
        io.model_from_spec("sequential", {"layers": [["head", spec]]})


def test_a_sequential_config_holds_only_its_layers_each_named_once():
    relu = {"type": "ReLU"}
    with pytest.raises(TypeError, match=r"the config of arch 'sequential' got unexpected "
                                        r"key\(s\) 'stray'; it holds only 'layers'"):
        io.model_from_spec("sequential", {"layers": [["0", relu]], "stray": 1})
    with pytest.raises(ValueError, match=r"Sequential '\(model\)' has more than one layer "
                                         r"named '0'"):
        io.model_from_spec("sequential", {"layers": [["0", relu], ["0", relu]]})
    linear = {"type": "Linear", "in_features": 2, "out_features": 3}
    # io.load counts the layers before building them: both count, not the last one
    assert io._state_sizes("sequential", {"layers": [["0", linear], ["0", linear]]}) == {
        "Linear layer '0'": 18}


def _state_values(model: nn.Module) -> int:
    return sum(value.size for value in model.state_dict().values())


@pytest.mark.parametrize("arch, config", [
    (OLD["arch"], json.loads(OLD["config"])),
    ("sequential", {"layers": [
        ["line", {"type": "Linear", "in_features": 3, "out_features": 5, "bias": False}],
        ["seq", {"type": "Sequential", "layers": [
            ["c1", {"type": "Conv1d", "in_channels": 4, "out_channels": 6, "kernel_size": 3,
                    "groups": 2}],
            ["bn", {"type": "BatchNorm1d", "num_features": 6, "affine": False}]]}],
        ["t", {"type": "ConvTranspose2d", "in_channels": 6, "out_channels": 4,
               "kernel_size": [3, 2], "groups": 2, "bias": False}],
        ["c2", {"type": "Conv2d", "in_channels": 4, "out_channels": 2, "kernel_size": 3}],
        ["bn2", {"type": "BatchNorm2d", "num_features": 2, "track_running_stats": False}]]}),
    ("lenet5", {}), ("lenet5", {"num_classes": 7, "in_channels": 3}),
    ("convnet", {}), ("convnet", {"num_classes": 5, "in_channels": 2, "width": 3, "hidden": 9}),
])
def test_the_state_size_counted_from_a_spec_is_that_of_the_model_built(arch, config):
    """``io.load`` refuses a spec whose count exceeds the file's tensors: a count too high
    would refuse good files, one too low would let a hostile spec allocate."""
    assert sum(io._state_sizes(arch, config).values()) == _state_values(
        io.model_from_spec(arch, config))


def test_every_registered_model_has_its_state_size_counted():
    assert set(io._REGISTERED_LAYERS) == set(numcnn.models.MODELS)


# --- Module.save / Module.load go through the serializer io registers -------------------------

def test_module_save_and_load_dispatch_to_the_registered_serializer(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(module_mod, "_SERIALIZER", {})
    module_mod.register_serializer(lambda m, path: calls.append(("save", m, path)) or path,
                                   lambda cls, path, *a, **k: calls.append(("load", cls, a, k)))
    model = nn.Linear(2, 2)
    assert model.save(tmp_path / "m") == tmp_path / "m"
    nn.Linear.load(tmp_path / "m", 2, out_features=2)
    assert calls == [("save", model, tmp_path / "m"), ("load", nn.Linear, (2,),
                                                       {"out_features": 2})]


def test_without_a_registered_serializer_save_and_load_say_what_is_missing(monkeypatch,
                                                                           tmp_path):
    monkeypatch.setattr(module_mod, "_SERIALIZER", {})
    with pytest.raises(RuntimeError, match=r"Module.save needs numcnn.io.*import numcnn"):
        nn.Linear(2, 2).save(tmp_path / "m.safetensors")
    with pytest.raises(RuntimeError, match=r"Module.load needs numcnn.io"):
        nn.Module.load(tmp_path / "m.safetensors")


def test_loading_a_directory_says_it_is_one_rather_than_missing(tmp_path):
    for load, op in [(nn.Module.load, "Module.load"), (nn.Linear.load, "Linear.load"),
                     (io.load, "load"), (io.load_safetensors, "load_safetensors"),
                     (io.read_metadata, "read_metadata")]:
        with pytest.raises(IsADirectoryError, match=rf"^{op}: {tmp_path} is a directory; "
                                                    r"expected a \.safetensors file$"):
            load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^Linear\.load: .*missing does not exist$"):
        nn.Linear.load(tmp_path / "missing")


def test_register_serializer_takes_functions():
    with pytest.raises(TypeError, match="register_serializer: load must be callable"):
        module_mod.register_serializer(print, "io.load")


_SAVE_AND_LOAD = """
import sys
import numcnn
model = numcnn.nn.Sequential(numcnn.nn.Linear(3, 2), numcnn.nn.ReLU())
model.save(sys.argv[1])
print(repr(numcnn.nn.Module.load(sys.argv[1])))
"""


def test_import_numcnn_is_enough_for_model_save(tmp_path):
    """The README's usage, in a fresh interpreter: ``model.save(path)`` and
    ``nn.Module.load(path)`` after nothing but ``import numcnn``."""
    pytest.importorskip("safetensors")
    env = {**os.environ, "PYTHONPATH": str(Path(numcnn.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", _SAVE_AND_LOAD, str(tmp_path / "m.safetensors")],
                         check=False, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(nn.Sequential(nn.Linear(3, 2), nn.ReLU()))


def test_weights_only_file_loaded_without_the_constructor_arguments_says_so(tmp_path):
    layer = nn.Linear(3, 2)
    path = layer.save(tmp_path / "linear.safetensors")
    with pytest.raises(TypeError, match=r"Linear.load: .* holds only the weights of a "
                                        r"numcnn.nn.linear.Linear; give its constructor's "
                                        r"arguments"):
        nn.Linear.load(path)
    again = nn.Linear.load(path, 3, 2)
    np.testing.assert_array_equal(again.weight.data, layer.weight.data)


def test_loading_a_symlink_loop_or_no_path_says_so(tmp_path):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    for load, op in [(nn.Module.load, "Module.load"), (io.load, "load"),
                     (io.load_safetensors, "load_safetensors"),
                     (io.read_metadata, "read_metadata")]:
        with pytest.raises(OSError, match=rf"^\[Errno \d+\] {op}: cannot open {loop}: "
                                          r"Too many levels of symbolic links$"):
            load(loop)
    with pytest.raises(TypeError, match=r"^load: path must be a str or os.PathLike, got int 3$"):
        io.load(3)
    with pytest.raises(ValueError, match=r"^load: .* is not a regular file"):
        io.load("/dev/null")
