"""Stratified folds on labels with unequal digit counts: a partition, stratified, fixed by the seed."""

import numpy as np
import pytest

from mnist_dvc.audit.cross_validation import fold_of

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
