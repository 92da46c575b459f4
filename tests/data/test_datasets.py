"""MNIST / Fashion-MNIST on the bundled files, indexing, validation, and where data is found."""
import gzip
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import (
    MNIST,
    ArrayDataset,
    Compose,
    FashionMNIST,
    Normalize,
    ToFloat,
    bundled_data_dir,
    cache_dir,
    find_dataset_dir,
    resolve_dataset_dir,
    search_dirs,
)

DATA = Path(__file__).resolve().parents[2] / "data"
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(DATA, train=True, download=False)


@pytest.fixture(scope="module")
def mnist_test():
    return MNIST(DATA, train=False, download=False)


def write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes(), compresslevel=1))


def make_dataset(data_dir, name="mnist", n=6, labels=None, images=None, marker=0):
    """Write a tiny four-file data set whose first pixel is ``marker`` (to tell copies apart)."""
    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        x = np.zeros((n, 28, 28), np.uint8) if images is None else images
        x[:, 0, 0] = marker
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz",
                  np.arange(n) % 10 if labels is None else labels)
    return Path(data_dir)


# ---- the real files -------------------------------------------------------------------------

def test_mnist_train(mnist_train):
    assert mnist_train.data.shape == (60000, 28, 28) and mnist_train.data.dtype == np.uint8
    assert mnist_train.targets.shape == (60000,) and mnist_train.targets.dtype == np.int64
    assert mnist_train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(mnist_train.targets).tolist() == TRAIN_COUNTS
    assert len(mnist_train) == 60000 and mnist_train.train
    assert mnist_train.folder == DATA / "mnist"


def pixel_mean_std(images):
    """Mean and standard deviation of uint8 images scaled to [0, 1], from their histogram."""
    counts = np.bincount(images.ravel(), minlength=256)
    values = np.arange(256) / 255.0
    mean = counts @ values / counts.sum()
    return mean, np.sqrt(counts @ (values - mean) ** 2 / counts.sum())


def test_mnist_mean_and_std_constants(mnist_train):
    mean, std = pixel_mean_std(mnist_train.data)
    assert mean == pytest.approx(MNIST.mean[0], abs=1e-4)
    assert std == pytest.approx(MNIST.std[0], abs=1e-4)


def test_mnist_test(mnist_test):
    assert mnist_test.data.shape == (10000, 28, 28)
    assert mnist_test.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert not mnist_test.train
    assert "Number of datapoints: 10000" in repr(mnist_test) and "Split: Test" in repr(mnist_test)


def test_fashion_mnist():
    train = FashionMNIST(DATA, train=True, download=False)
    test = FashionMNIST(DATA, train=False, download=False)
    assert train.data.shape == (60000, 28, 28) and test.data.shape == (10000, 28, 28)
    assert np.bincount(train.targets).tolist() == [6000] * 10
    assert np.bincount(test.targets).tolist() == [1000] * 10
    assert train.folder == DATA / "fashion-mnist"
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert len(train.classes) == 10 and train.class_to_idx["Bag"] == 8
    mean, std = pixel_mean_std(train.data)
    assert mean == pytest.approx(FashionMNIST.mean[0], abs=1e-4)
    assert std == pytest.approx(FashionMNIST.std[0], abs=1e-4)
    assert not np.array_equal(train.data[:10], MNIST(DATA, limit=10, download=False).data)


def test_mnist_classes():
    assert MNIST.classes == [str(d) for d in range(10)]


# ---- indexing -------------------------------------------------------------------------------

def test_int_index(mnist_test):
    x, y = mnist_test[0]
    assert x.shape == (28, 28) and x.dtype == np.uint8 and y == 7 and type(y) is int
    x_last, _ = mnist_test[-1]
    np.testing.assert_array_equal(x_last, mnist_test.data[9999])
    assert mnist_test[np.int64(2)][1] == 1


def test_batch_index_matches_single_items(mnist_test):
    mnist_test.transform = Compose([ToFloat(), Normalize(MNIST.mean, MNIST.std)])
    mnist_test.target_transform = lambda y: y + 100
    try:
        idx = np.array([5, 0, 9999, 5])
        xb, yb = mnist_test[idx]
        assert xb.shape == (4, 1, 28, 28) and xb.dtype == np.float32
        for k, i in enumerate(idx):
            x, y = mnist_test[int(i)]
            np.testing.assert_allclose(xb[k], x, rtol=0, atol=1e-6)
            assert yb[k] == y == mnist_test.targets[i] + 100
        xs, ys = mnist_test[2:5]
        np.testing.assert_array_equal(xs, mnist_test[[2, 3, 4]][0])
        assert ys.tolist() == [101, 100, 104]
    finally:
        mnist_test.transform = mnist_test.target_transform = None


def test_bad_indices(mnist_test):
    with pytest.raises(IndexError, match="index 10000 is out of range for 10000 samples"):
        mnist_test[10000]
    with pytest.raises(IndexError):
        mnist_test[np.array([0, 10000])]
    for bad in (True, 1.5, np.zeros((2, 2), int), np.array([0.0, 1.0])):
        with pytest.raises(TypeError, match="index must be an int, a slice or a 1-D integer"):
            mnist_test[bad]
    x, y = mnist_test[[]]
    assert x.shape == (0, 28, 28) and y.shape == (0,)


def test_limit():
    small = MNIST(DATA, train=False, download=False, limit=25)
    assert len(small) == 25 and small.data.shape == (25, 28, 28)
    assert small.targets[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert len(MNIST(DATA, train=False, download=False, limit=10**6)) == 10000
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="limit must be a positive int"):
            MNIST(DATA, train=False, download=False, limit=bad)


def test_array_dataset():
    x = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2)
    ds = ArrayDataset(x, np.arange(5))
    assert len(ds) == 5 and ds[3][1] == 3
    xb, yb = ds[np.array([4, 1])]
    np.testing.assert_array_equal(xb, x[[4, 1]])
    assert yb.tolist() == [4, 1]
    with pytest.raises(ValueError, match="x has 5 samples but y has 4"):
        ArrayDataset(x, np.arange(4))
    with pytest.raises(ValueError, match="sample axis"):
        ArrayDataset(x, 3)


def test_plain_callable_transform_on_a_batch():
    ds = ArrayDataset(np.ones((4, 2, 2)), np.zeros(4, int), transform=lambda im: im.sum())
    assert ds[1][0] == 4.0
    assert ds[:3][0].tolist() == [4.0, 4.0, 4.0]


# ---- validation of the files ----------------------------------------------------------------

def test_count_mismatch_is_reported(tmp_path):
    make_dataset(tmp_path, n=6)
    labels = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(5))
    with pytest.raises(ValueError, match="holds 6 images but .*t10k-labels.* holds 5 labels"):
        MNIST(tmp_path, train=False, download=False)


def test_label_out_of_range_is_reported(tmp_path):
    make_dataset(tmp_path, n=4, labels=[1, 2, 10, 3])
    with pytest.raises(ValueError, match=r"label 10 at index 2 is out of range; expected 0\.\.9"):
        MNIST(tmp_path, train=True, download=False)


def test_images_with_wrong_rank_are_reported(tmp_path):
    make_dataset(tmp_path, n=4)
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((4, 784)))
    with pytest.raises(ValueError, match="train-images.*declares 2 dimension"):
        MNIST(tmp_path, download=False)


# ---- where the data is found ----------------------------------------------------------------

@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Environment with a fresh cache and no NUMCNN_DATA; returns tmp_path."""
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def first_pixel(ds):
    return int(ds.data[0, 0, 0])


def test_bundled_copy_is_found_in_a_checkout():
    assert bundled_data_dir() == DATA


def test_cache_dir(dirs, monkeypatch):
    assert cache_dir() == dirs / "xdg" / "numcnn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(dirs / "home"))
    assert cache_dir() == dirs / "home" / ".cache" / "numcnn"


def test_search_order(dirs, monkeypatch):
    assert search_dirs() == [DATA, dirs / "xdg" / "numcnn"]
    monkeypatch.setenv("NUMCNN_DATA", str(dirs / "env"))
    assert search_dirs() == [dirs / "env", DATA, dirs / "xdg" / "numcnn"]
    assert search_dirs(dirs / "explicit") == [dirs / "explicit"]


def test_resolution_order(dirs, monkeypatch):
    explicit = make_dataset(dirs / "explicit", marker=1)
    env = make_dataset(dirs / "env", marker=2)
    bundled = make_dataset(dirs / "bundled", marker=3)
    make_dataset(dirs / "xdg" / "numcnn", marker=4)
    monkeypatch.setattr("numcnn.data.paths.bundled_data_dir", lambda: bundled)
    monkeypatch.setenv("NUMCNN_DATA", str(env))
    assert first_pixel(MNIST(explicit, download=False)) == 1
    assert first_pixel(MNIST(download=False)) == 2
    monkeypatch.setenv("NUMCNN_DATA", str(dirs / "empty"))  # set, but holds nothing
    assert first_pixel(MNIST(download=False)) == 3
    monkeypatch.setattr("numcnn.data.paths.bundled_data_dir", lambda: None)
    assert first_pixel(MNIST(download=False)) == 4
    assert find_dataset_dir("mnist") == dirs / "xdg" / "numcnn" / "mnist"


def test_a_directory_lacking_a_file_is_skipped(dirs, monkeypatch):
    env = make_dataset(dirs / "env", marker=2)
    (env / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("NUMCNN_DATA", str(env))
    assert find_dataset_dir("mnist") == DATA / "mnist"
    # the test split is complete there, so a test-split lookup still stops at it
    test_files = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert find_dataset_dir("mnist", files=test_files) == env / "mnist"
    assert first_pixel(MNIST(train=False, download=False)) == 2


def test_explicit_dir_without_data_and_no_download(dirs):
    target = dirs / "nothing"
    with pytest.raises(FileNotFoundError) as info:
        MNIST(target, download=False)
    message = str(info.value)
    assert str(target) in message and "train-images-idx3-ubyte.gz" in message
    assert "train-labels-idx1-ubyte.gz" in message and "download=True" in message


def test_no_data_anywhere_and_no_download(dirs, monkeypatch):
    monkeypatch.setattr("numcnn.data.paths.bundled_data_dir", lambda: None)
    monkeypatch.setenv("NUMCNN_DATA", str(dirs / "env"))
    with pytest.raises(FileNotFoundError) as info:
        resolve_dataset_dir("fashion-mnist", download=False)
    message = str(info.value)
    assert "fashion-mnist" in message and "NUMCNN_DATA" in message
    assert str(dirs / "env") in message and str(dirs / "xdg" / "numcnn") in message


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown data set name 'cifar10'"):
        resolve_dataset_dir("cifar10", download=False)
