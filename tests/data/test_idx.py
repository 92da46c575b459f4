"""IDX reader: the bundled files, and every way a file can be malformed."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numcnn.data import IdxFormatError, read_idx

DATA = Path(__file__).resolve().parents[2] / "data"


def idx_bytes(shape, payload=None, type_code=0x08, ndim=None):
    """Build an IDX file: magic, big-endian dims, payload (default: a ramp of the right size)."""
    ndim = len(shape) if ndim is None else ndim
    if payload is None:
        payload = (np.arange(int(np.prod(shape))) % 251).astype(np.uint8).tobytes()
    header = bytes([0, 0, type_code, ndim]) + struct.pack(f">{len(shape)}I", *shape)
    return header + payload


def write(path, content, compress=False):
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def test_bundled_mnist_test_files():
    images = read_idx(DATA / "mnist" / "t10k-images-idx3-ubyte.gz", ndim=3)
    labels = read_idx(DATA / "mnist" / "t10k-labels-idx1-ubyte.gz", ndim=1)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974,
                                            1009]
    assert images[:, 0, 0].max() == 0 and images.max() == 255  # black corner, white ink


def test_raw_and_gzip_give_the_same_array(tmp_path):
    gz = DATA / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = write(tmp_path / "labels.gz", gzip.decompress(gz.read_bytes()))  # raw, .gz name
    np.testing.assert_array_equal(read_idx(raw), read_idx(gz))
    renamed = write(tmp_path / "labels.idx", gz.read_bytes())  # gzip, no .gz suffix
    np.testing.assert_array_equal(read_idx(renamed), read_idx(gz))


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 7), min_size=1, max_size=4), compress=st.booleans())
def test_round_trip(tmp_path_factory, shape, compress):
    data = np.random.default_rng(len(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path_factory.mktemp("idx") / "x.idx"
    write(path, idx_bytes(shape, data.tobytes()), compress)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == tuple(shape)
    np.testing.assert_array_equal(out, data)
    out[...] = 0  # the result is an ordinary writable array


def test_error_is_a_value_error():
    assert issubclass(IdxFormatError, ValueError)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("content, message", [
    (b"", "holds 0 bytes"),
    (b"\x00\x00\x08", "holds 3 bytes"),
    (b"PK\x03\x04" + bytes(20), "not an IDX magic number"),
    (idx_bytes((2, 3), type_code=0x0D), r"type code 0x0d \(float32\); only 0x08"),
    (idx_bytes((2, 3), type_code=0x42), r"type code 0x42 \(unknown type\)"),
    (bytes([0, 0, 8, 0]), "declares 0 dimensions"),
    (idx_bytes((5, 2, 2), ndim=3)[:10], "needs 12 bytes of sizes .* holds only 6"),
    (idx_bytes((3, 4, 5))[:-1], "declares 3x4x5 = 60 bytes of data but the file holds 59$"),
    (idx_bytes((3, 4, 5)) + b"\x07", r"holds 61 \(1 byte too many\)"),
    (idx_bytes((3, 4, 5)) + bytes(9), r"holds 69 \(9 bytes too many\)"),
    (idx_bytes((60000, 28, 28), payload=bytes(1234)),
     "declares 60000x28x28 = 47040000 bytes of data but the file holds 1234"),
])
def test_malformed_files_are_rejected(tmp_path, content, message, compress):
    path = write(tmp_path / "bad-idx3-ubyte", content, compress)
    with pytest.raises(IdxFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_wrong_number_of_dimensions(tmp_path):
    path = write(tmp_path / "labels-idx1-ubyte", idx_bytes((4,)))
    assert read_idx(path, ndim=1).shape == (4,)
    with pytest.raises(IdxFormatError, match=r"declares 1 dimension\(s\); expected 3") as info:
        read_idx(path, ndim=3)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream(tmp_path):
    packed = gzip.compress(idx_bytes((20, 28, 28)))
    path = write(tmp_path / "cut.gz", packed[: len(packed) // 2])
    with pytest.raises(IdxFormatError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip_stream(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes((20, 28, 28))))
    packed[len(packed) // 2] ^= 0xFF  # damage the deflate data
    packed[-5] ^= 0xFF  # and the stored CRC, in case the damage still inflates
    path = write(tmp_path / "bad.gz", bytes(packed))
    with pytest.raises(IdxFormatError, match="corrupt or truncated gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_bad_gzip_header(tmp_path):
    path = write(tmp_path / "bad.gz", b"\x1f\x8b\x01\x00" + bytes(16))  # method 1 is not deflate
    with pytest.raises(IdxFormatError, match="gzip"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")
