"""One preparation for training and new digits: deskewing and stroke normalisation, as described."""

import numpy as np
import pytest

from mnist_dvc.digits.deskew import deskew
from mnist_dvc.digits.preparation import preparation_for, prepare
from mnist_dvc.digits.stroke import stroke_widths


@pytest.fixture(scope="module")
def digits(mnist_train):
    return mnist_train[0][:2000]


def test_nothing_asked_leaves_digits_as_written(digits):
    preparation = preparation_for(digits, deskew_digits=False, normalise_strokes_to_median=False)
    assert preparation == {"deskew": False, "stroke_width": None}
    assert np.array_equal(prepare(digits, preparation), digits)


def test_deskewing_alone_is_the_deskew_module(digits):
    preparation = preparation_for(digits, deskew_digits=True, normalise_strokes_to_median=False)
    assert np.array_equal(prepare(digits, preparation), deskew(digits))


def test_strokes_go_to_the_median_width_of_the_training_digits(digits):
    preparation = preparation_for(digits, deskew_digits=True, normalise_strokes_to_median=True)
    before = stroke_widths(deskew(digits))
    assert preparation["stroke_width"] == pytest.approx(np.median(before), abs=1e-4)
    after = stroke_widths(prepare(digits, preparation))
    assert np.median(np.abs(after - preparation["stroke_width"])) < 0.25 * np.median(np.abs(before - preparation["stroke_width"]))


def test_a_new_digit_is_prepared_exactly_like_the_same_digit_among_many(digits):
    preparation = {"deskew": True, "stroke_width": 2.5}
    assert np.array_equal(prepare(digits[7:8], preparation)[0], prepare(digits, preparation)[7])
