"""Fixed-size batches: every batch has the same shape, the last one padded with zeros, and the
counts of real rows add up to the data."""

import numpy as np
import pytest

from mnist_dvc.models.batches import padded_batches


def test_every_batch_has_one_shape_and_the_last_is_padded_with_zeros():
    images = np.arange(1, 11 * 2 * 2 + 1, dtype=np.uint8).reshape(11, 2, 2)  # no zero pixel in the data
    labels = np.arange(1, 12, dtype=np.int32)
    batches = list(padded_batches((images, labels), 4))
    assert [count for _, count in batches] == [4, 4, 3]
    for (x, y), _ in batches:
        assert x.shape == (4, 2, 2) and x.dtype == np.uint8
        assert y.shape == (4,) and y.dtype == np.int32
    (x, y), count = batches[-1]
    np.testing.assert_array_equal(x[:count], images[8:])
    np.testing.assert_array_equal(y[:count], labels[8:])
    assert not x[count:].any() and not y[count:].any()


def test_the_real_rows_in_order_are_the_data():
    images = np.random.default_rng(0).integers(0, 256, (23, 28, 28), dtype=np.uint8)
    labels = np.arange(23)
    batches = list(padded_batches((images, labels), 5))
    np.testing.assert_array_equal(np.concatenate([x[:count] for (x, _), count in batches]), images)
    np.testing.assert_array_equal(np.concatenate([y[:count] for (_, y), count in batches]), labels)
    assert sum(count for _, count in batches) == 23


@pytest.mark.parametrize("n, batch_size, counts", [(8, 4, [4, 4]), (3, 8, [3]), (1, 1, [1]), (0, 4, [])])
def test_counts(n, batch_size, counts):
    data = np.ones((n, 3), np.float32)
    assert [count for _, count in padded_batches((data,), batch_size)] == counts
