"""Downloads from a local HTTP server: verification, atomic writes, mirror fallback.

Only 127.0.0.1 is ever contacted: an autouse fixture makes any other URL fail the test.
"""
import functools
import http.server
import shutil
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from numcnn.data import (
    MNIST,
    ChecksumError,
    DownloadError,
    catalog,
    download_dataset,
    download_file,
    resolve_dataset_dir,
    sha256_file,
)

DATA = Path(__file__).resolve().parents[2] / "data"
TEST_FILES = catalog.SPLIT_FILES["test"]
SHA = catalog.SHA256["mnist"]


@pytest.fixture(autouse=True)
def local_network_only(monkeypatch):
    real = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        host = urllib.parse.urlsplit(getattr(url, "full_url", url)).hostname
        assert host == "127.0.0.1", f"test tried to contact {url}"
        return real(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """Serve a fresh directory over HTTP; yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.timeout = 2
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def publish(root, names=TEST_FILES, corrupt=None):
    """Copy the real MNIST files into the served directory, flipping one byte of ``corrupt``."""
    for name in names:
        content = bytearray((DATA / "mnist" / name).read_bytes())
        if name == corrupt:
            content[len(content) // 2] ^= 0x01
        (root / name).write_bytes(bytes(content))


def leftovers(directory):
    return sorted(p.name for p in Path(directory).iterdir()) if Path(directory).exists() else []


def test_download_file_fetches_and_verifies(serve, tmp_path):
    root, url = serve
    publish(root)
    name = "t10k-labels-idx1-ubyte.gz"
    dest = tmp_path / "dest"
    path = download_file(url, name, dest, SHA[name], timeout=5)
    assert path == dest / name
    assert path.read_bytes() == (DATA / "mnist" / name).read_bytes()
    assert leftovers(dest) == [name]  # no temporary file left


def test_corrupted_download_is_rejected_and_deleted(serve, tmp_path):
    root, url = serve
    name = "t10k-labels-idx1-ubyte.gz"
    publish(root, corrupt=name)
    dest = tmp_path / "dest"
    with pytest.raises(ChecksumError) as info:
        download_file(url, name, dest, SHA[name], timeout=5)
    message = str(info.value)
    assert name in message and SHA[name] in message
    assert sha256_file(root / name) in message  # the actual hash
    assert leftovers(dest) == []


def test_missing_file_on_server(serve, tmp_path):
    _, url = serve
    with pytest.raises(OSError, match="404"):
        download_file(url, "t10k-labels-idx1-ubyte.gz", tmp_path / "dest", "0" * 64, timeout=5)
    assert leftovers(tmp_path / "dest") == []


def test_download_dataset_and_read_it(serve, tmp_path):
    root, url = serve
    publish(root)
    folder = download_dataset("mnist", tmp_path / "d", files=TEST_FILES, mirrors=[url],
                              timeout=5, verbose=False)
    assert folder == tmp_path / "d" / "mnist"
    assert leftovers(folder) == sorted(TEST_FILES)
    for name in TEST_FILES:
        assert sha256_file(folder / name) == SHA[name]
    test = MNIST(tmp_path / "d", train=False, download=False)
    assert len(test) == 10000 and test.targets[:3].tolist() == [7, 2, 1]


def test_download_dataset_rejects_corrupt_file(serve, tmp_path):
    root, url = serve
    publish(root, corrupt="t10k-images-idx3-ubyte.gz")
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz"):
        download_dataset("mnist", tmp_path, files=TEST_FILES, mirrors=[url], timeout=5,
                         verbose=False)
    # the good labels file may have arrived; the bad images file must not be there
    assert "t10k-images-idx3-ubyte.gz" not in leftovers(tmp_path / "mnist")
    assert all(not n.startswith(".") for n in leftovers(tmp_path / "mnist"))


def test_next_mirror_is_tried(serve, tmp_path, capsys):
    root, url = serve
    publish(root)
    (root / "broken").mkdir()
    publish(root / "broken", corrupt="t10k-labels-idx1-ubyte.gz")
    mirrors = [url + "nothing-here/", url + "broken/", url]
    folder = download_dataset("mnist", tmp_path, files=TEST_FILES[1:], mirrors=mirrors,
                              timeout=5)
    assert sha256_file(folder / TEST_FILES[1]) == SHA[TEST_FILES[1]]
    assert capsys.readouterr().err.count("downloading") == 3


def test_all_mirrors_failing(serve, tmp_path):
    _, url = serve
    mirrors = [url + "a/", url + "b/"]
    with pytest.raises(DownloadError) as info:
        download_dataset("mnist", tmp_path, files=TEST_FILES[1:], mirrors=mirrors, timeout=5,
                         verbose=False)
    assert not isinstance(info.value, ChecksumError)
    assert mirrors[0] in str(info.value) and mirrors[1] in str(info.value)
    assert not (tmp_path / "mnist").exists()           # no empty folder left behind


def test_failed_download_removes_the_folders_it_created(serve, tmp_path):
    _, url = serve
    root = tmp_path / "new" / "data"
    with pytest.raises(DownloadError):
        download_dataset("mnist", root, files=TEST_FILES[1:], mirrors=[url + "a/"], timeout=5,
                         verbose=False)
    assert not (tmp_path / "new").exists()


def test_failed_download_keeps_a_folder_that_was_there(serve, tmp_path):
    _, url = serve
    folder = tmp_path / "mnist"
    folder.mkdir()
    with pytest.raises(DownloadError):
        download_dataset("mnist", tmp_path, files=TEST_FILES[1:], mirrors=[url + "a/"],
                         timeout=5, verbose=False)
    assert folder.is_dir()


def test_existing_files_are_not_downloaded_again(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in TEST_FILES:
        shutil.copy(DATA / "mnist" / name, folder / name)
    # no server at all: any download attempt would fail
    assert download_dataset("mnist", tmp_path, files=TEST_FILES, mirrors=["http://127.0.0.1:9/"],
                            timeout=1, verbose=False) == folder


def test_download_dataset_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown data set name 'emnist'"):
        download_dataset("emnist", tmp_path)
    with pytest.raises(ValueError, match="no published checksum for 'x.gz'"):
        download_dataset("mnist", tmp_path, files=["x.gz"])
    with pytest.raises(ValueError, match="mirrors"):
        download_dataset("mnist", tmp_path, mirrors=[])


def test_dataset_downloads_into_explicit_dir(serve, tmp_path, monkeypatch):
    root, url = serve
    publish(root)
    monkeypatch.setitem(catalog.MIRRORS, "mnist", [url])
    test = MNIST(tmp_path / "mine", train=False, limit=50)
    assert test.folder == tmp_path / "mine" / "mnist"
    assert test.data.shape == (50, 28, 28)


def test_download_goes_to_cache_when_nothing_holds_the_data(serve, tmp_path, monkeypatch):
    root, url = serve
    publish(root)
    monkeypatch.delenv("NUMCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("numcnn.data.paths.bundled_data_dir", lambda: None)
    folder = resolve_dataset_dir("mnist", files=TEST_FILES, mirrors=[url], timeout=5,
                                 verbose=False)
    assert folder == tmp_path / "cache" / "numcnn" / "mnist"
    labels = MNIST(train=False, download=False).targets
    np.testing.assert_array_equal(labels[:4], [7, 2, 1, 0])
