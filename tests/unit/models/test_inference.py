"""Predicting probabilities: a Flax model as one function, batches of any size, test-time
augmentation (the digit and its four one-pixel shifts), timed predictions and the second
training's test scores."""

import time

import numpy as np
import pytest

from mnist_dvc.models.inference import TTA_SHIFTS, neural_classifier, predict_proba, shifted, timed_predictions
from mnist_dvc.models.networks import build_model, init_rngs


@pytest.fixture(scope="module")
def model():
    model = build_model("vgg_bn", width=8, rngs=init_rngs(5))
    model.eval()
    return model


@pytest.fixture(scope="module")
def trained(mnist_train, train_params):
    """A narrow network after one short epoch on real digits, and 500 digits it never saw."""
    from mnist_dvc.training.loop import build_trainer, run_epoch

    images, labels = mnist_train
    trainer = build_trainer(train_params(model="flat_mlp", width=32, epochs=1, batch_size=32), (images[:2048], labels[:2048]))
    state, _, _ = run_epoch(trainer, trainer.initial_state, 1)
    return trainer, state, (images[2048:2548], labels[2048:2548])


def test_a_trained_network_predicts_real_digits_as_the_training_loop_scores_them(trained):
    trainer, state, (images, labels) = trained
    probs = neural_classifier(trainer.eval_model(state))(images)
    assert isinstance(probs, np.ndarray) and probs.dtype == np.float32 and probs.shape == (500, 10)
    assert probs.min() >= 0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    _, accuracy = trainer.evaluate(state, images, labels)
    assert accuracy > 0.4  # it learnt something: chance is 0.1
    # The same answers as the loop's own scoring: same pixel scale, eval mode, the weights it saves.
    assert (probs.argmax(axis=1) == labels).mean() == pytest.approx(accuracy, abs=1e-9)


def test_a_digit_s_probabilities_do_not_depend_on_the_others_in_its_call(model, mnist_train):
    images = mnist_train[0][:20]
    classifier = neural_classifier(model)
    np.testing.assert_allclose(classifier(images[:5]), classifier(images)[:5], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(classifier(images), classifier(images))


def test_batches_of_any_size_give_the_same_result(model):
    classifier = neural_classifier(model)
    images = np.random.default_rng(1).integers(0, 256, (23, 28, 28), dtype=np.uint8)
    probs = predict_proba(classifier, images, 7)
    assert probs.dtype == np.float32 and probs.shape == (23, 10)  # the padding of the last batch is dropped
    np.testing.assert_allclose(probs, predict_proba(classifier, images, 64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs, predict_proba(classifier, images, 23), rtol=1e-5, atol=1e-6)


def test_no_digits_give_no_rows_without_asking_the_classifier():
    def never(images):
        raise AssertionError("called")

    for tta in (False, True):
        probs = predict_proba(never, np.zeros((0, 28, 28), np.uint8), 7, tta)
        assert probs.shape == (0, 10) and probs.dtype == np.float32


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


COMPILE_S, BATCH_S = 0.3, 0.02  # the stand-in's first call (as a jit compilation), and each later one


@pytest.mark.parametrize(("tta", "timed_calls"), [(False, 3), (True, 15)])
def test_timed_predictions_are_the_plain_ones_with_the_seconds_of_every_view_s_batches_but_not_of_compiling(tta, timed_calls):
    """The seconds cover every batch of every view (five with `tta`) and leave out the first, untimed
    call, which pays for compilation: a stand-in classifier that is slow on its first call and
    sleeps on every call shows both, whatever the load on the machine, by when it was called."""
    calls = []

    def slow_first(images):
        started = time.perf_counter()
        time.sleep(COMPILE_S if not calls else BATCH_S)
        calls.append((len(images), started, time.perf_counter()))
        return row_of_the_ink(images)

    images = np.zeros((5, 28, 28), np.uint8)
    images[:, 3, 3] = 255
    before = time.perf_counter()
    probs, seconds = timed_predictions(slow_first, images, 2, tta=tta)
    wall = time.perf_counter() - before
    np.testing.assert_array_equal(probs, predict_proba(row_of_the_ink, images, 2, tta=tta))
    assert [size for size, _, _ in calls] == [2] * (1 + timed_calls)  # one batch first, in the same padded shape
    (_, first_start, first_end), (_, timed_start, _), (_, _, timed_end) = calls[0], calls[1], calls[-1]
    assert seconds >= timed_end - timed_start >= timed_calls * BATCH_S  # every timed call inside the seconds
    assert seconds <= wall - (first_end - first_start) <= wall - COMPILE_S  # and the first call outside them
