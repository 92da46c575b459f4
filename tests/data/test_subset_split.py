"""Subset and random_split: values, batched access, torch's length rules, seeds, errors."""
import math

import numpy as np
import pytest

from numcnn.data import ArrayDataset, DataLoader, Subset, ToFloat, random_split


def numbered(n, features=3):
    """Sample i has x = [i, i, ...] and y = i, so batches reveal the indices they hold."""
    x = np.repeat(np.arange(n, dtype=np.float64)[:, None], features, axis=1)
    return ArrayDataset(x, np.arange(n, dtype=np.int64))


class Spy(ArrayDataset):
    """An ArrayDataset that records every index it is given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def __getitem__(self, index):
        self.calls.append(index)
        return super().__getitem__(index)


class CountingBatch:
    """A transform with a vectorized ``batch``: counts its calls and the samples they held."""

    def __init__(self):
        self.sizes = []

    def __call__(self, x):
        raise AssertionError("the batch path must be used")

    def batch(self, x):
        self.sizes.append(len(x))
        return x * 10


# ---- Subset ---------------------------------------------------------------------------------

def test_subset_values_and_len():
    ds = numbered(10)
    sub = Subset(ds, [7, 2, -1, 2])
    assert len(sub) == 4
    assert sub.indices.dtype == np.int64 and sub.indices.tolist() == [7, 2, 9, 2]
    x, y = sub[0]
    assert y == 7 and type(y) is int and x.tolist() == [7.0] * 3
    assert sub[2][1] == 9 and sub[-1][1] == 2 and sub[np.int64(1)][1] == 2
    xs, ys = sub[1:3]
    assert ys.tolist() == [2, 9] and xs[:, 0].tolist() == [2.0, 9.0]
    assert sub[np.array([3, 0, 0])][1].tolist() == [2, 7, 7]
    assert sub[[]][1].shape == (0,)
    assert Subset(ds, range(3, 6))[:][1].tolist() == [3, 4, 5]
    assert Subset(ds, np.array([1, 4], dtype=np.uint8))[1][1] == 4
    assert "Subset(n=4, of ArrayDataset with 10 samples)" == repr(sub)


def test_subset_empty_and_nested():
    ds = numbered(6)
    empty = Subset(ds, [])
    assert len(empty) == 0 and empty.indices.dtype == np.int64
    assert empty[np.arange(0)][0].shape == (0, 3)
    inner = Subset(ds, [5, 4, 3, 2])
    outer = Subset(inner, [3, 0])
    assert [outer[i][1] for i in range(2)] == [2, 5]
    assert outer[:][1].tolist() == [2, 5]


def test_subset_batches_are_one_vectorized_call():
    spy = Spy(np.arange(40).reshape(20, 2), np.arange(20), transform=CountingBatch())
    sub = Subset(spy, [19, 3, 8, 8, 0])
    x, y = sub[1:4]
    assert len(spy.calls) == 1 and isinstance(spy.calls[0], np.ndarray)
    assert spy.calls[0].tolist() == [3, 8, 8]
    assert spy.transform.sizes == [3]  # the data set's transform ran once, on the batch
    assert y.tolist() == [3, 8, 8] and x.tolist() == [[60, 70], [160, 170], [160, 170]]
    spy.calls.clear()
    spy.transform = None  # one sample goes through __call__, which CountingBatch forbids
    assert sub[3][1] == 8 and spy.calls == [8] and type(spy.calls[0]) is int


def test_subset_sees_changes_to_the_dataset_transform():
    ds = ArrayDataset(np.zeros((4, 2, 2), np.uint8), np.arange(4))
    sub = Subset(ds, [1, 3])
    ds.transform = ToFloat()
    assert sub[:][0].shape == (2, 1, 2, 2) and sub[:][0].dtype == np.float32


@pytest.mark.parametrize("indices, match", [
    (np.zeros((2, 2), int), (r"Subset: indices must be a 1-D sequence of ints, got an array of "
                            r"shape \(2, 2\) and dtype int64")),
    ([0.0, 1.0], r"got an array of shape \(2,\) and dtype float64"),
    (3, r"indices must be a 1-D sequence of ints, got 3$"),
    (None, r"indices must be a 1-D sequence of ints, got None"),
    ([[0, 1], [2]], r"indices must be a 1-D sequence of ints, got \[\[0, 1\], \[2\]\]"),
    (np.array([True, False, True, False, True]),
     r"dtype bool; for a boolean mask pass np.flatnonzero\(mask\)"),
    (["a", "b"], r"got an array of shape \(2,\) and dtype <U1"),
])
def test_subset_rejects_bad_index_types(indices, match):
    with pytest.raises(TypeError, match=match):
        Subset(numbered(5), indices)


@pytest.mark.parametrize("indices, match", [
    ([0, 4, 5], (r"Subset: indices\[2\] = 5 is out of range for a data set of 5 samples; "
                r"expected -5 <= index < 5")),
    ([-6, 1], r"indices\[0\] = -6 is out of range"),
    (np.array([1, 2**63], dtype=np.uint64), r"indices\[1\] = 9223372036854775808 is out of"),
])
def test_subset_rejects_out_of_range_indices(indices, match):
    with pytest.raises(IndexError, match=match):
        Subset(numbered(5), indices)


def test_subset_index_errors():
    sub = Subset(numbered(10), [1, 2, 3])
    with pytest.raises(IndexError, match="Subset: index 3 is out of range for 3 samples"):
        sub[3]
    with pytest.raises(TypeError, match="Subset: index must be an int, a slice or a 1-D integer "
                                        "array, got True"):
        sub[True]
    with pytest.raises(TypeError, match=r"Subset: index must be .* shape \(\) and dtype float64"):
        sub[1.5]
    with pytest.raises(IndexError):
        sub[np.array([0, 3])]


# ---- DataLoader over a Subset ----------------------------------------------------------------

def test_dataloader_over_subset_yields_the_right_samples():
    picks = [17, 3, 11, 0, 8, 8, 25]
    spy = Spy(np.arange(30, dtype=np.float64)[:, None] * 2, np.arange(30))
    loader = DataLoader(Subset(spy, picks), batch_size=3)
    batches = list(loader)
    assert [y.tolist() for _, y in batches] == [[17, 3, 11], [0, 8, 8], [25]]
    for x, y in batches:
        np.testing.assert_array_equal(x[:, 0], 2 * y)
    assert len(spy.calls) == 3 and all(isinstance(c, np.ndarray) for c in spy.calls)


def test_shuffled_dataloader_over_split_covers_the_split():
    ds = numbered(50)
    train, val = random_split(ds, [40, 10], seed=4)
    loader = DataLoader(train, batch_size=16, shuffle=True, seed=1)
    for _ in range(2):
        seen = []
        for x, y in loader:
            np.testing.assert_array_equal(x[:, 0], y)
            seen.append(y)
        assert sorted(np.concatenate(seen).tolist()) == sorted(train.indices.tolist())
    assert set(train.indices.tolist()).isdisjoint(val.indices.tolist())


# ---- random_split --------------------------------------------------------------------------

def indices_of(subsets):
    return [s.indices.tolist() for s in subsets]


def test_split_by_counts_is_disjoint_and_covering():
    ds = numbered(20)
    parts = random_split(ds, [5, 0, 12, 3], seed=0)
    assert [len(p) for p in parts] == [5, 0, 12, 3]
    assert all(isinstance(p, Subset) and p.dataset is ds for p in parts)
    flat = np.concatenate([p.indices for p in parts])
    assert sorted(flat.tolist()) == list(range(20))  # disjoint and covering
    assert flat.tolist() != list(range(20))  # shuffled
    for p in parts:
        x, y = p[:]
        assert y.tolist() == p.indices.tolist() and x[:, 0].tolist() == y.tolist()
    assert random_split(numbered(0), [0, 0], seed=0)[1].indices.tolist() == []


def test_split_lengths_can_be_numpy_or_range():
    assert [len(p) for p in random_split(numbered(6), np.array([2, 4]), seed=0)] == [2, 4]
    assert [len(p) for p in random_split(numbered(3), range(3), seed=0)] == [0, 1, 2]
    assert [len(p) for p in random_split(numbered(4), np.array([0.5, 0.5]), seed=0)] == [2, 2]


def test_split_is_reproducible_with_a_seed_and_differs_across_seeds():
    ds = numbered(100)
    a = indices_of(random_split(ds, [30, 70], seed=7))
    assert a == indices_of(random_split(ds, [30, 70], seed=7))
    assert a != indices_of(random_split(ds, [30, 70], seed=8))
    # a generator is advanced, as torch's generator= is: two calls give two splits
    gen = np.random.default_rng(7)
    first = indices_of(random_split(ds, [30, 70], seed=gen))
    assert first == a and indices_of(random_split(ds, [30, 70], seed=gen)) != a
    unseeded = [indices_of(random_split(ds, [30, 70])) for _ in range(2)]
    assert unseeded[0] != unseeded[1]


@pytest.mark.parametrize("n, fractions, expected", [
    (10, [0.3, 0.3, 0.4], [3, 3, 4]),  # exact
    (10, [0.25, 0.25, 0.5], [3, 2, 5]),  # floor 2, 2, 5: one left over, to split 0
    (11, [0.3, 0.3, 0.4], [4, 3, 4]),  # floor 3, 3, 4: one left over
    (7, [1 / 3, 1 / 3, 1 / 3], [3, 2, 2]),
    (8, [1 / 3, 1 / 3, 1 / 3], [3, 3, 2]),  # two left over: splits 0 and 1
    (100, [0.8, 0.1, 0.1], [80, 10, 10]),
    (1, [1.0], [1]),
])
def test_split_by_fractions(n, fractions, expected):
    parts = random_split(numbered(n), fractions, seed=0)
    assert [len(p) for p in parts] == expected
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(n))


def test_split_fraction_leftover_goes_round_robin_and_warns_on_empty_splits():
    with pytest.warns(UserWarning) as record:
        parts = random_split(numbered(5), [0.1] * 10, seed=0)
    assert [len(p) for p in parts] == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert [str(w.message) for w in record] == [
        f"random_split: split {i} (fraction 0.1) of 5 samples is empty" for i in range(5, 10)]
    assert all(w.filename == __file__ for w in record)  # points at the caller


@pytest.mark.parametrize("n, fractions", [
    (10, [0.3, 0.3, 0.4]), (11, [0.3, 0.3, 0.4]), (7, [1 / 3, 1 / 3, 1 / 3]),
    (8, [1 / 3, 1 / 3, 1 / 3]), (5, [0.1] * 10), (97, [0.7, 0.2, 0.1]), (13, [0.5, 0.5]),
])
def test_split_lengths_match_torch(n, fractions):
    torch = pytest.importorskip("torch")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = [len(p) for p in random_split(numbered(n), fractions, seed=0)]
        theirs = [len(p) for p in torch.utils.data.random_split(range(n), fractions)]
    assert ours == theirs


@pytest.mark.parametrize("lengths, error, match", [
    ([5, -1, 6], ValueError, (r"random_split: lengths\[1\] = -1 is negative; expected counts "
                             r">= 0")),
    ([3, 3], ValueError, (r"random_split: lengths \[3, 3\] sum to 6 but the data set has 10 "
                         r"samples; expected ints summing to 10 or fractions summing to 1")),
    ([1, 0], ValueError, r"lengths \[1, 0\] sum to 1 but the data set has 10 samples"),
    ([0.5, 0.4], ValueError, (r"random_split: fractions \[0.5, 0.4\] sum to 0.9; expected "
                             r"fractions summing to 1 \(or ints summing to 10\)")),
    ([1.5, -0.5], ValueError, r"random_split: lengths\[0\] = 1.5 is not a fraction in \[0, 1\]"),
    ([0.5, -0.0001, 0.5001], ValueError, r"lengths\[1\] = -0.0001 is not a fraction"),
    ([math.nan, 1.0], ValueError, r"lengths\[0\] = nan is not a fraction in \[0, 1\]"),
    ([5, 0.5], TypeError, (r"random_split: lengths \[5, 0.5\] mixes ints and fractions; "
                          r"expected all ints \(counts\) or all floats \(fractions summing to "
                          r"1\)")),
    ([5, True], TypeError, r"random_split: lengths\[1\] must be an int or a float, got True"),
    ([5, "5"], TypeError, r"lengths\[1\] must be an int or a float, got '5'"),
    (10, TypeError, (r"random_split: lengths must be a sequence of ints or of fractions, got "
                    r"10")),
    ("55", TypeError, r"lengths must be a sequence of ints or of fractions, got '55'"),
    (None, TypeError, r"lengths must be a sequence .* got None"),
])
def test_split_errors(lengths, error, match):
    with pytest.raises(error, match=match):
        random_split(numbered(10), lengths, seed=0)


@pytest.mark.parametrize("seed", [-1, "0", 1.5])
def test_split_bad_seed(seed):
    with pytest.raises(TypeError, match=r"random_split: seed must be a non-negative int, a "
                                        r"numpy.random.Generator or None, got"):
        random_split(numbered(10), [5, 5], seed=seed)
