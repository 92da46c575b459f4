"""LeNet-5, the small ConvNet and the model registry."""
import itertools
import json

import numpy as np
import pytest

import numcnn as nc
import numcnn.functional as F
from numcnn import models, nn
from numcnn.models import ConvNet, LeNet5, get_model


def images(n, size, channels=1, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, channels, size, size)).astype(dtype)


def to_torch_state(model, torch):
    return {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}


# --- LeNet-5 ------------------------------------------------------------------------------------

def test_lenet5_output_shape_dtype_and_names():
    model = models.lenet5()
    out = model(images(3, 32))
    assert isinstance(model, LeNet5) and out.shape == (3, 10) and out.dtype == np.float32
    assert [n for n, _ in model.named_parameters()] == [
        f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3")
        for kind in ("weight", "bias")]
    assert models.lenet5(num_classes=5, in_channels=3)(images(2, 32, channels=3)).shape == (2, 5)


def test_lenet5_parameter_count_is_the_classic_61706():
    def conv(c_in, c_out, k):
        return c_out * c_in * k * k + c_out

    def fc(n_in, n_out):
        return n_in * n_out + n_out

    expected = conv(1, 6, 5) + conv(6, 16, 5) + fc(16 * 5 * 5, 120) + fc(120, 84) + fc(84, 10)
    assert expected == 61706
    assert models.lenet5().num_parameters() == expected
    model = models.lenet5(activation="relu", pool="max")
    assert sum(p.numel() for p in model.parameters()) == 61706


def test_lenet5_rejects_unpadded_mnist_with_a_hint():
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 1, 32, 32\), got "
                                         r"\(2, 1, 28, 28\); pad 28×28 MNIST images by 2"):
        models.lenet5()(images(2, 28))


@pytest.mark.parametrize("activation, pool", [("tanh", "avg"), ("relu", "max")])
def test_lenet5_matches_the_same_torch_model(activation, pool):
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TorchLeNet5(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), \
                tnn.Linear(84, 10)
            self.act = tnn.Tanh() if activation == "tanh" else tnn.ReLU()
            self.pool = tnn.AvgPool2d(2) if pool == "avg" else tnn.MaxPool2d(2)

        def forward(self, x):
            x = self.pool(self.act(self.conv1(x)))
            x = self.pool(self.act(self.conv2(x)))
            x = self.act(self.fc1(x.flatten(1)))
            return self.fc3(self.act(self.fc2(x)))

    ours = models.lenet5(activation=activation, pool=pool).double()
    theirs = TorchLeNet5().double()
    theirs.load_state_dict(to_torch_state(ours, torch))            # strict: names must agree
    x, labels = images(4, 32, dtype=np.float64), np.array([0, 3, 9, 3])
    loss = F.cross_entropy(ours(x), labels)
    tloss = tnn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(labels))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


def test_a_few_gradient_steps_reduce_the_loss():
    nc.manual_seed(0)
    model = models.lenet5()
    x, labels = images(8, 32), np.arange(8) % 10
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(x), labels)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad
    assert losses[-1] < 0.5 * losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses))


def test_manual_seed_makes_models_reproducible():
    def build(seed, arch="lenet5", **config):
        nc.manual_seed(seed)
        return get_model(arch, **config).state_dict()

    for arch, config in [("lenet5", {}), ("convnet", {"width": 4, "hidden": 8})]:
        a, b, c = build(0, arch, **config), build(0, arch, **config), build(1, arch, **config)
        assert all(np.array_equal(a[k], b[k]) for k in a)
        assert not all(np.array_equal(a[k], c[k]) for k in a)


# --- ConvNet ------------------------------------------------------------------------------------

def test_convnet_shapes_parameter_count_and_modes():
    model = models.convnet(width=4, hidden=8, dropout=0.5)
    assert model(images(4, 28)).shape == (4, 10)
    w, h = 4, 8
    convs = 1 * w * 9 + w * w * 9 + w * 2 * w * 9 + 2 * w * 2 * w * 9
    bns = 2 * (w + w + 2 * w + 2 * w) + 2 * h
    assert model.num_parameters() == convs + bns + 2 * w * 7 * 7 * h + h * 10 + 10
    assert ConvNet().num_parameters() == 468138
    tracked = [int(v) for k, v in model.state_dict().items() if k.endswith("num_batches_tracked")]
    assert tracked == [1] * 5
    model.eval()
    np.testing.assert_array_equal(model(images(4, 28)).data, model(images(4, 28)).data)
    with pytest.raises(ValueError, match=r"ConvNet: expected input of shape \(N, 1, 28, 28\)"):
        model(images(2, 32))


def test_convnet_matches_the_same_torch_model_in_train_and_eval():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    w, h = 4, 8

    def block(c_in, c_out):
        return [tnn.Conv2d(c_in, c_out, 3, padding=1, bias=False), tnn.BatchNorm2d(c_out),
                tnn.ReLU(), tnn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                tnn.BatchNorm2d(c_out), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Dropout(0.0)]

    theirs = tnn.Module()
    theirs.features = tnn.Sequential(*block(1, w), *block(w, 2 * w))
    theirs.classifier = tnn.Sequential(
        tnn.Flatten(), tnn.Linear(2 * w * 49, h, bias=False), tnn.BatchNorm1d(h), tnn.ReLU(),
        tnn.Dropout(0.0), tnn.Linear(h, 10))
    theirs.double()
    ours = models.convnet(width=w, hidden=h, dropout=0.0).double()
    theirs.load_state_dict(to_torch_state(ours, torch))

    def torch_forward(x):
        return theirs.classifier(theirs.features(torch.from_numpy(x)))

    for mode in (True, False):
        ours.train(mode), theirs.train(mode)
        x = images(4, 28, dtype=np.float64, seed=int(mode))
        np.testing.assert_allclose(ours(x).data, torch_forward(x).detach().numpy(),
                                   rtol=1e-9, atol=1e-10)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12)


# --- registry -----------------------------------------------------------------------------------

def test_config_rebuilds_the_architecture_and_is_json():
    for arch, config in [("lenet5", {"activation": "relu", "pool": "max", "num_classes": 7}),
                         ("convnet", {"width": 4, "hidden": 8, "dropout": 0.1})]:
        model = get_model(arch, **config)
        assert model.arch == arch and config.items() <= model.config.items()
        saved = json.loads(json.dumps({"arch": model.arch, "config": model.config}))
        clone = get_model(saved["arch"], **saved["config"])
        assert repr(clone) == repr(model)
        clone.load_state_dict(model.state_dict())
    assert get_model("LeNet5").arch == "lenet5"
    assert set(models.MODELS) == {"lenet5", "convnet"}


def test_input_size():
    assert models.input_size("lenet5") == (1, 32, 32)
    assert models.input_size("convnet") == (1, 28, 28)
    assert models.input_size("convnet", in_channels=3) == (3, 28, 28)


def test_registry_and_constructor_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet'; known models: 'convnet', "
                                         "'lenet5'"):
        get_model("resnet")
    with pytest.raises(TypeError, match="unexpected argument.*'widht'.*accepts num_classes"):
        get_model("convnet", widht=8)
    with pytest.raises(ValueError, match="activation must be one of 'tanh', 'relu', got 'gelu'"):
        get_model("lenet5", activation="gelu")
    with pytest.raises(ValueError, match="pool must be one of 'avg', 'max'"):
        models.lenet5(pool="sum")
    with pytest.raises(ValueError, match=r"dropout must be a probability in \[0, 1\), got 1"):
        models.convnet(dropout=1)
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        models.lenet5(num_classes=0)
    with pytest.raises(ValueError, match="unknown model"):
        models.input_size("vgg")


def test_double_model_runs_in_float64():
    model = models.lenet5().double()
    assert model(images(2, 32, dtype=np.float64)).dtype == np.float64
    assert isinstance(model.fc3.weight, nn.Parameter)
