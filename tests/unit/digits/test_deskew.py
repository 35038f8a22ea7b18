"""Deskewing: slanted strokes come out upright, upright digits and blank images are left alone."""

import numpy as np
import pytest

from mnist_dvc.digits import deskew as deskew_module
from mnist_dvc.digits.deskew import deskew, skew_moments
from mnist_dvc.io.idx import read_images


def slanted_stroke(slope: float) -> np.ndarray:
    """A 3-pixel-thick line over rows 4..23 that moves `slope` columns per row (negative: like '/')."""
    image = np.zeros((28, 28), dtype=np.uint8)
    for row in range(4, 24):
        centre = 13.5 + slope * (row - 13.5)
        cols = np.arange(28)
        image[row] = np.clip(255 * (2.0 - np.abs(cols - centre)), 0, 255).astype(np.uint8)
    return image


def upright_ring() -> np.ndarray:
    """A '0' drawn as an anti-aliased ellipse ring, symmetric about its centre of mass."""
    rows, cols = np.mgrid[:28, :28]
    radius = np.hypot((rows - 13.5) / 9.0, (cols - 13.5) / 6.0)
    return np.clip(255 * (1 - np.abs(radius - 1) * 6), 0, 255).astype(np.uint8)


def centre_of_mass(image: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[:28, :28]
    return np.array([(rows * image).sum(), (cols * image).sum()]) / image.sum()


def test_slanted_stroke_comes_out_upright_and_stays_in_place():
    stroke = slanted_stroke(-0.4)[None]
    straight = deskew(stroke)
    (_, before), (_, after) = skew_moments(stroke), skew_moments(straight)
    assert before[0] == pytest.approx(-0.4, abs=0.05)
    assert abs(after[0]) < 0.02 < abs(before[0]) / 10
    assert np.allclose(centre_of_mass(straight[0]), centre_of_mass(stroke[0]), atol=0.25)
    upright = slanted_stroke(0.0)
    assert np.abs(straight[0].astype(int) - upright).max() <= 20  # close to the same line drawn upright


def test_upright_digit_is_unchanged():
    ring = upright_ring()[None]
    assert np.abs(deskew(ring).astype(int) - ring).max() <= 1


def test_blank_and_single_row_images_are_unchanged():
    blank = np.zeros((1, 28, 28), dtype=np.uint8)
    dash = np.zeros((1, 28, 28), dtype=np.uint8)
    dash[0, 14, 5:20] = 200
    assert np.array_equal(deskew(blank), blank)
    assert np.array_equal(deskew(dash), dash)
    assert skew_moments(blank)[1][0] == 0.0


def test_real_digits_keep_their_ink_and_lose_their_slant(mnist_mirror):
    images = read_images(mnist_mirror / "t10k-images-idx3-ubyte.gz")[:1000]
    straight = deskew(images)
    assert straight.shape == images.shape and straight.dtype == np.uint8
    mass_ratio = straight.sum(axis=(1, 2)) / images.sum(axis=(1, 2))
    assert np.all(np.abs(mass_ratio - 1) < 0.05)
    assert np.abs(skew_moments(straight)[1]).mean() < np.abs(skew_moments(images)[1]).mean() / 20


def test_batches_give_the_same_result_as_single_images(mnist_mirror, monkeypatch):
    images = read_images(mnist_mirror / "t10k-images-idx3-ubyte.gz")[:20]
    monkeypatch.setattr(deskew_module, "_CHUNK", 7)  # several chunks, the last one partial
    one_by_one = np.concatenate([deskew(image[None]) for image in images])
    assert np.array_equal(deskew(images), one_by_one)
