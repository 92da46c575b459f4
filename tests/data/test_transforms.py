"""Transforms: shapes, dtypes, values, batch == one image at a time, seeded randomness."""
import numpy as np
import pytest

from numcnn.data import (
    Compose,
    Normalize,
    Pad,
    RandomCrop,
    RandomShift,
    ToFloat,
    Transform,
    apply_batch,
)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(16, 28, 28), dtype=np.uint8)


def shifted(img, dy, dx, fill=0):
    """Reference: out[i, j] = img[i - dy, j - dx], ``fill`` outside, by explicit loops."""
    h, w = img.shape[-2:]
    out = np.full_like(img, fill)
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[..., i, j] = img[..., i - dy, j - dx]
    return out


def test_to_float(images):
    one = ToFloat()(images[0])
    assert one.shape == (1, 28, 28) and one.dtype == np.float32
    np.testing.assert_allclose(one[0], images[0] / 255.0, rtol=1e-6)
    batch = ToFloat().batch(images)
    assert batch.shape == (16, 1, 28, 28) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0 and batch.max() == 1.0
    np.testing.assert_array_equal(batch[3], ToFloat()(images[3]))
    assert ToFloat(np.float64).batch(images).dtype == np.float64
    assert ToFloat()(images[:3]).shape == (3, 28, 28)  # (C, H, W) keeps its channels
    assert ToFloat().batch(images[:, None]).shape == (16, 1, 28, 28)
    floats = np.full((2, 2), 0.5)
    assert ToFloat()(floats).tolist() == [[[0.5, 0.5], [0.5, 0.5]]]  # no rescaling of floats


def test_to_float_errors(images):
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        ToFloat(np.int32)
    with pytest.raises(TypeError, match="expected uint8 or floating images, got int16"):
        ToFloat()(images[0].astype(np.int16))
    with pytest.raises(ValueError, match=r"ToFloat: expected one image .* got shape \(16, 1, "
                                         r"28, 28\); call .batch\(\)"):
        ToFloat()(images[:, None])
    with pytest.raises(ValueError, match=r"expected a batch .* got shape \(28, 28\)"):
        ToFloat().batch(images[0])


def test_normalize(images):
    x = ToFloat().batch(images)
    out = Normalize(0.1307, 0.3081).batch(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, (x - 0.1307) / 0.3081, rtol=1e-5, atol=1e-6)
    rgb = np.random.default_rng(1).random((4, 3, 5, 5))
    mean, std = [0.1, 0.2, 0.3], [0.5, 1.0, 2.0]
    out = Normalize(mean, std).batch(rgb)
    for c in range(3):
        np.testing.assert_allclose(out[:, c], (rgb[:, c] - mean[c]) / std[c], rtol=1e-12)
    np.testing.assert_allclose(Normalize(mean, std)(rgb[2]), out[2], rtol=1e-12)


def test_normalize_errors(images):
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize(0.5, [1.0, 0.0])
    with pytest.raises(ValueError, match="mean has 2 values but std has 3"):
        Normalize([0.1, 0.2], [1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="apply ToFloat first"):
        Normalize(0.5, 0.5).batch(images)
    with pytest.raises(ValueError, match=r"3 mean/std values for images with 1 channel"):
        Normalize([0.1, 0.2, 0.3], 1.0).batch(ToFloat().batch(images))


@pytest.mark.parametrize("padding, shape, top, left", [
    (2, (32, 32), 2, 2),
    ((1, 3), (34, 30), 3, 1),  # (left/right, top/bottom)
    ((1, 2, 3, 4), (34, 32), 2, 1),  # (left, top, right, bottom)
])
def test_pad(images, padding, shape, top, left):
    out = Pad(padding, fill=7).batch(images)
    assert out.shape == (16,) + shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, top:top + 28, left:left + 28], images)
    border = np.ones(shape, bool)
    border[top:top + 28, left:left + 28] = False
    assert np.all(out[:, border] == 7)
    np.testing.assert_array_equal(Pad(padding, fill=7)(images[5]), out[5])


def test_pad_errors():
    for bad in (-1, (1, 2, 3), (1.5, 2), "2"):
        with pytest.raises(ValueError, match="padding must be a non-negative int"):
            Pad(bad)


def test_deterministic_batch_equals_per_image(images):
    t = Compose([ToFloat(np.float64), Pad(2), Normalize(0.5, 0.25)])
    batch = t.batch(images)
    assert batch.shape == (16, 1, 32, 32) and batch.dtype == np.float64
    np.testing.assert_array_equal(batch, np.stack([t(im) for im in images]))


def test_random_shift_moves_each_image_within_range(images):
    out = RandomShift(2, seed=0).batch(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    offsets = set()
    for img, res in zip(images, out):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(shifted(img, dy, dx), res)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 3  # offsets are drawn per image


def test_random_shift_follows_its_generator(images):
    """The batch path equals the loop reference with the offsets the generator yields."""
    expected = np.random.default_rng(5).integers((-3, -1), (4, 2), size=(16, 2))
    out = RandomShift((3, 1), fill=9, seed=5).batch(images[:, None])  # (N, C, H, W)
    for k, (dy, dx) in enumerate(expected):
        np.testing.assert_array_equal(out[k], shifted(images[k, None], dy, dx, fill=9))


def test_random_shift_determinism(images):
    a = RandomShift(3, seed=42).batch(images)
    b = RandomShift(3, seed=42).batch(images)
    c = RandomShift(3, seed=43).batch(images)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    t = RandomShift(3, seed=42)
    assert not np.array_equal(t.batch(images), t.batch(images))  # the generator advances
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    np.testing.assert_array_equal(RandomShift(3, seed=7).batch(images, rng=rng_a),
                                  RandomShift(3, seed=8).batch(images, rng=rng_b))
    np.testing.assert_array_equal(RandomShift(0).batch(images), images)


def test_random_shift_one_image(images):
    out = RandomShift(2, seed=3)(images[0])
    assert out.shape == (28, 28)
    assert any(np.array_equal(shifted(images[0], dy, dx), out)
               for dy in range(-2, 3) for dx in range(-2, 3))
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        RandomShift(-1)


def test_random_crop(images):
    x = ToFloat().batch(images)
    out = RandomCrop(28, padding=4, seed=0).batch(x)
    assert out.shape == (16, 1, 28, 28) and out.dtype == np.float32
    padded = np.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    corners = set()
    for k in range(16):
        found = [(top, left) for top in range(9) for left in range(9)
                 if np.array_equal(padded[k, :, top:top + 28, left:left + 28], out[k])]
        assert found
        corners.add(found[0])
    assert len(corners) > 3
    small = RandomCrop((20, 24), seed=1).batch(images)
    assert small.shape == (16, 20, 24)
    np.testing.assert_array_equal(RandomCrop(10, seed=2).batch(images),
                                  RandomCrop(10, seed=2).batch(images))
    assert RandomCrop(10, seed=2)(images[0]).shape == (10, 10)
    with pytest.raises(ValueError, match=r"size \(31, 31\) is larger than the padded image "
                                         r"\(30, 30\); pass pad_if_needed=True to pad it"):
        RandomCrop(31, padding=1).batch(images)


def crop_corners(padded, out):
    """(top, left) of the first window of each padded image that equals its crop in ``out``."""
    h, w = out.shape[-2:]
    corners = []
    for k in range(len(out)):
        found = [(top, left) for top in range(padded.shape[-2] - h + 1)
                 for left in range(padded.shape[-1] - w + 1)
                 if np.array_equal(padded[k, ..., top:top + h, left:left + w], out[k])]
        assert found, f"crop {k} is no window of the padded image"
        corners.append(found[0])
    return corners


def test_random_crop_pad_if_needed_pads_small_images(images):
    x = ToFloat().batch(images[:, :20, :24])  # (16, 1, 20, 24), values in [0, 1]
    out = RandomCrop(28, pad_if_needed=True, fill=-1, seed=0).batch(x)
    assert out.shape == (16, 1, 28, 28) and out.dtype == np.float32
    # torchvision pads the missing 8 rows on top and bottom, the missing 4 columns on both sides
    padded = np.pad(x, ((0, 0), (0, 0), (8, 8), (4, 4)), constant_values=-1)
    assert len(set(crop_corners(padded, out))) > 3  # positions still vary per image
    # a 28-window of 8 + 20 + 8 rows (4 + 24 + 4 columns) always holds the whole image
    assert ((out != -1).sum(axis=(1, 2, 3)) == 20 * 24).all()
    one = RandomCrop(28, pad_if_needed=True, seed=0)(images[0, :20, :24])
    assert one.shape == (28, 28) and one.dtype == np.uint8 and (one != 0).sum() > 400
    with pytest.raises(ValueError, match=r"size \(28, 28\) is larger than the padded image "
                                         r"\(20, 24\); pass pad_if_needed=True"):
        RandomCrop(28, fill=-1, seed=0).batch(x)


def test_random_crop_pad_if_needed_after_padding_and_per_axis(images):
    x = ToFloat().batch(images[:, :20, :])  # (16, 1, 20, 28)
    out = RandomCrop(24, padding=1, pad_if_needed=True, fill=-1, seed=3).batch(x)
    assert out.shape == (16, 1, 24, 24)
    # padding=1 gives 22 x 30: only the height is short (by 2), so only it is padded further
    padded = np.pad(x, ((0, 0), (0, 0), (3, 3), (1, 1)), constant_values=-1)
    crop_corners(padded, out)
    big = RandomCrop((20, 24), pad_if_needed=True, seed=5).batch(images)
    np.testing.assert_array_equal(big, RandomCrop((20, 24), seed=5).batch(images))  # no-op
    assert "pad_if_needed=True" in repr(RandomCrop(3, pad_if_needed=True))
    with pytest.raises(TypeError, match=r"RandomCrop: pad_if_needed must be a bool, got 0.5 "
                                        r"\(fill comes after it, as in torchvision\)"):
        RandomCrop(3, None, 0.5)


def test_compose_passes_rng_to_random_transforms(images):
    t = Compose([RandomShift(2, seed=0), ToFloat()])
    a = t.batch(images, rng=np.random.default_rng(9))
    b = t.batch(images, rng=np.random.default_rng(9))
    assert a.shape == (16, 1, 28, 28)
    np.testing.assert_array_equal(a, b)
    assert "RandomShift(max_shift=(2, 2)" in repr(t)
    with pytest.raises(TypeError, match=r"transforms\[1\] is not callable"):
        Compose([ToFloat(), 3])


def test_apply_batch_fallbacks(images):
    class OnlyBatch:
        def __call__(self, x):
            raise AssertionError("the batch path must be used")

        def batch(self, x):
            return x + 1

    assert apply_batch(OnlyBatch(), np.zeros(3)).tolist() == [1, 1, 1]
    assert apply_batch(lambda im: im.shape, images).tolist() == [[28, 28]] * 16
    assert isinstance(ToFloat(), Transform)
