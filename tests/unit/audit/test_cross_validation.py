"""Cross-validation folds: stratified folds on labels with unequal digit counts (a partition, stratified,
fixed by the seed), each fold's split, putting the folds' predictions back together, and the digits
the audit covers (`audited_digits`: the labels training uses, after a person's verdicts)."""

import numpy as np
import pytest

from mnist_dvc.audit.cross_validation import audited_digits, combine_folds, fold_fits, fold_of, fold_split, out_of_fold
from mnist_dvc.errors import UserError

# 10 digits with deliberately unequal counts (50 to 743), shuffled.
COUNTS = np.array([743, 50, 501, 98, 620, 333, 207, 411, 159, 555])
LABELS = np.random.default_rng(0).permutation(np.repeat(np.arange(10), COUNTS)).astype(np.uint8)


@pytest.mark.parametrize("folds", [2, 5, 7])
def test_folds_partition_the_digits(folds):
    fold = fold_of(LABELS, folds, seed=0)
    assert fold.shape == LABELS.shape and fold.dtype == np.int64
    # Every digit held out by exactly one fold (none left at the -1 it starts with), every fold about the same size.
    assert set(np.unique(fold)) == set(range(folds))
    assert np.abs(np.bincount(fold) - len(LABELS) / folds).max() <= 10


@pytest.mark.parametrize("folds", [2, 5, 7])
def test_every_fold_has_the_expected_count_of_each_digit_within_one(folds):
    fold = fold_of(LABELS, folds, seed=3)
    per_fold = np.array([np.bincount(LABELS[fold == k], minlength=10) for k in range(folds)])
    assert (np.abs(per_fold - COUNTS / folds) <= 1).all()


def test_the_seed_fixes_the_folds():
    first = fold_of(LABELS, 5, seed=1)
    np.testing.assert_array_equal(first, fold_of(LABELS, 5, seed=1))
    assert (first != fold_of(LABELS, 5, seed=2)).any()


def test_as_many_folds_as_the_rarest_digit_is_allowed():
    fold = fold_of(LABELS, 50, seed=0)
    assert (np.bincount(fold[LABELS == 1]) == 1).all()


@pytest.mark.parametrize("labels, folds", [
    (LABELS, 1),
    (LABELS, 0),
    (LABELS, 51),  # digit 1 has only 50
    (np.array([], dtype=np.uint8), 2),
])
def test_impossible_fold_counts_raise(labels, folds):
    with pytest.raises(ValueError):
        fold_of(labels, folds, seed=0)


def test_each_fold_holds_out_its_own_digits_and_trains_on_the_rest_less_a_stratified_slice(mnist_train):
    labels = mnist_train[1][:3000]
    held = []
    for fold in range(3):
        train, val, held_out = fold_split(labels, 3, fold, seed=0)
        assert sorted(np.concatenate([train, val, held_out])) == list(range(3000))  # disjoint, and all of them
        assert len(val) == 200  # a tenth of the 2,000 digits of the other folds (1,000 at most)
        assert set(labels[val]) == set(range(10)) and abs(len(held_out) - 1000) <= 10
        held.append(held_out)
    assert sorted(np.concatenate(held)) == list(range(3000))  # every digit held out exactly once
    again = fold_split(labels, 3, 1, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, fold_split(labels, 3, 1, seed=0)))
    assert not np.array_equal(fold_split(labels, 3, 1, seed=1)[2], again[2])
    assert len(fold_split(mnist_train[1], 5, 0, seed=0)[1]) == 1000  # the full set: 1,000, not a tenth


@pytest.mark.parametrize(("folds", "fold", "message"), [(1, 0, "at least 2 folds"), (3, 3, "fold 3 is not one of 0..2"),
                                                       (40, 0, "40 folds need at least 40 digits of every class")])
def test_impossible_folds_raise(mnist_train, folds, fold, message):
    with pytest.raises(ValueError, match=message):
        fold_split(mnist_train[1][:300], folds, fold, seed=0)


def test_out_of_fold_puts_each_digit_back_and_refuses_folds_that_do_not_partition():
    probs = np.eye(10, dtype=np.float32)[[3, 1, 4, 1, 5]]
    parts = [(np.array([0, 3]), probs[[0, 3]]), (np.array([1, 2, 4]), probs[[1, 2, 4]])]
    np.testing.assert_array_equal(out_of_fold(5, parts), probs)
    with pytest.raises(ValueError, match="no fold held out digit 2"):
        out_of_fold(5, [parts[0], (np.array([1, 4]), probs[[1, 4]])])
    with pytest.raises(ValueError, match="fold 1: holds out digits another fold"):
        out_of_fold(5, [parts[0], (np.array([1, 2, 3, 4]), probs[[1, 2, 3, 4]])])
    with pytest.raises(ValueError, match=r"fold 1: positions outside 0\.\.4"):
        out_of_fold(5, [parts[0], (np.array([1, 2, 5]), probs[[1, 2, 4]])])


def test_folds_combine_when_they_fit_these_digits():
    """Five digits at official places 2, 5, 6, 8, 9 (the others left out by a person's verdicts);
    the folds name them by those places."""
    index, labels = np.array([2, 5, 6, 8, 9]), np.array([3, 1, 4, 1, 5])
    probs = np.eye(10, dtype=np.float32)[labels]
    folds = [{"positions": index[at], "labels": labels[at], "probs": probs[at], "test_probs": np.full((2, 10), value, np.float32)}
             for at, value in (([0, 3], 0.1), ([1, 2, 4], 0.3))]
    assert all(fold_fits(fold, index, labels, n_test=2) for fold in folds)
    train, test = combine_folds(index, folds)
    np.testing.assert_array_equal(train, probs)
    np.testing.assert_allclose(test, 0.2)
    assert not fold_fits(folds[0], index, labels, n_test=3)  # another test set
    assert not fold_fits(folds[1], index[:4], labels[:4], n_test=2)  # a digit past these
    assert not fold_fits({**folds[0], "positions": np.array([2, 7])}, index, labels, n_test=2)  # a digit left out here
    assert not fold_fits({**folds[0], "labels": labels[[0, 3]] + 1}, index, labels, n_test=2)  # other given labels
    with pytest.raises(ValueError, match="no fold held out digit 1"):
        combine_folds(index, folds[:1])
    with pytest.raises(ValueError, match=r"fold 0: positions outside 0\.\.4"):
        combine_folds(index, [{**folds[0], "positions": np.array([2, 7])}, folds[1]])


def test_the_audited_digits_carry_the_labels_training_uses_without_those_left_out(tmp_path, mnist_mirror, mnist_train):
    images, official = mnist_train
    labels = official[:100].astype(np.int64)
    labels[[3, 40]] = [(labels[3] + 1) % 10, -1]  # one corrected, one judged ambiguous
    npz = tmp_path / "train_labels.npz"
    np.savez(npz, index=np.arange(100), labels=labels)
    files = (mnist_mirror / "train-images-idx3-ubyte.gz", mnist_mirror / "train-labels-idx1-ubyte.gz")
    digits = audited_digits(*files, npz, 100)
    expected = np.delete(np.arange(100), 40)
    np.testing.assert_array_equal(digits.index, expected)
    np.testing.assert_array_equal(digits.images, images[expected])
    np.testing.assert_array_equal(digits.labels, labels[expected])
    np.testing.assert_array_equal(digits.official, official[expected])
    assert digits.labels.dtype == official.dtype and (digits.labels != digits.official).sum() == 1
    with pytest.raises(UserError, match=r"train_labels\.npz: made for other training digits than the first 200 of .*; rerun the preprocess stage"):
        audited_digits(*files, npz, 200)
