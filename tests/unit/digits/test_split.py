"""Holding out the validation set and counting digits per split, on the real training labels."""

import numpy as np
import pytest

from mnist_dvc.digits.split import digit_counts, split_validation


@pytest.fixture(scope="module")
def labels(mnist_train) -> np.ndarray:
    return mnist_train[1][:2000]


def test_the_validation_set_is_held_out_of_the_training_set(labels):
    train, val = split_validation(labels, 200, seed=0)
    assert len(train) == 1800 and len(val) == 200
    assert train.tolist() == sorted(train.tolist()) and val.tolist() == sorted(val.tolist())
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(2000))  # disjoint, and nothing lost


def test_the_split_is_stratified_by_digit(labels):
    """Each digit's share of the validation set is within a digit of its share of the training part."""
    train, val = split_validation(labels, 200, seed=0)
    train_share = np.bincount(labels[train], minlength=10) / len(train)
    val_count = np.bincount(labels[val], minlength=10)
    assert np.all(val_count > 0)
    assert np.all(np.abs(val_count - 200 * train_share) <= 1)


def test_the_seed_alone_decides_which_images_are_held_out(labels):
    first, again, other = (split_validation(labels, 200, seed) for seed in (1, 1, 2))
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("val_size", [5, 1999])
def test_no_stratified_split_is_a_value_error(labels, val_size):
    """Fewer held-out images than digits, or fewer left to train on, leaves some digit out."""
    with pytest.raises(ValueError):
        split_validation(labels, val_size, seed=0)


def test_digit_counts_has_a_row_per_digit_and_a_column_per_named_split():
    table = digit_counts(train=np.array([0, 0, 3], np.uint8), val=np.array([3], np.uint8), test=np.array([9, 0], np.uint8))
    assert list(table.columns) == ["digit", "train", "val", "test"]
    assert table["digit"].tolist() == list(range(10))
    assert table["train"].tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 0]  # digits that never occur count 0
    assert table["val"].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert table["test"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
