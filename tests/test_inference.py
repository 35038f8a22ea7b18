"""Predicting probabilities: a Flax model as one function, batches of any size, and test-time
augmentation (the digit and its four one-pixel shifts)."""

import jax
import numpy as np
import pytest

from stages.lib.inference import TTA_SHIFTS, neural_classifier, predict_proba, shifted
from stages.lib.models import build_model, init_rngs


@pytest.fixture(scope="module")
def model():
    model = build_model("vgg_bn", width=8, rngs=init_rngs(5))
    model.eval()
    return model


def test_a_network_becomes_a_function_from_digits_to_probabilities(model):
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    probs = neural_classifier(model)(images)
    assert isinstance(probs, np.ndarray) and probs.shape == (20, 10)
    expected = jax.nn.softmax(model((images / 255.0).astype(np.float32)[..., None]))
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_batches_of_any_size_give_the_same_result(model):
    classifier = neural_classifier(model)
    images = np.random.default_rng(1).integers(0, 256, (23, 28, 28), dtype=np.uint8)
    probs = predict_proba(classifier, images, 7)
    assert probs.dtype == np.float32 and probs.shape == (23, 10)  # the padding of the last batch is dropped
    np.testing.assert_allclose(probs, predict_proba(classifier, images, 64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, predict_proba(classifier, images, 23), rtol=1e-5, atol=1e-6)


def test_shifts_move_whole_pixels_and_leave_blank_edges():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(shifted(images, 0, 0), images)
    down = shifted(images, 1, 0)
    np.testing.assert_array_equal(down[:, 1:], images[:, :-1])
    assert not down[:, 0].any()
    left = shifted(images, 0, -1)
    np.testing.assert_array_equal(left[:, :, :-1], images[:, :, 1:])
    assert not left[:, :, -1].any()


def row_of_the_ink(images: np.ndarray) -> np.ndarray:
    """A stand-in classifier that answers, with certainty, the row of each image's ink (mod 10)."""
    rows = np.argmax(images.max(axis=2), axis=1)
    return np.eye(10, dtype=np.float32)[rows % 10]


def test_test_time_augmentation_averages_the_digit_and_its_four_shifts():
    assert sorted(TTA_SHIFTS) == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]
    images = np.zeros((3, 28, 28), np.uint8)
    for i, row in enumerate((4, 15, 21)):
        images[i, row, 9] = 255
    averaged = predict_proba(row_of_the_ink, images, 2, tta=True)
    # The views see the ink at its own row three times (unshifted, moved left, moved right),
    # one row up once and one row down once.
    for i, row in enumerate((4, 15, 21)):
        expected = np.zeros(10, np.float32)
        expected[row % 10] += 0.6
        expected[(row - 1) % 10] += 0.2
        expected[(row + 1) % 10] += 0.2
        np.testing.assert_allclose(averaged[i], expected, atol=1e-6)
    assert averaged.dtype == np.float32
    np.testing.assert_array_equal(predict_proba(row_of_the_ink, images, 2), np.eye(10, dtype=np.float32)[[4, 5, 1]])


def test_test_time_augmentation_of_a_network_gives_distributions_that_differ_from_one_view(model):
    classifier = neural_classifier(model)
    images = np.random.default_rng(2).integers(0, 256, (9, 28, 28), dtype=np.uint8)
    averaged = predict_proba(classifier, images, 4, tta=True)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(averaged, predict_proba(classifier, images, 4))
