"""Cached augmentation: shapes and labels line up, the seed alone decides the output, 0 turns it off."""

import numpy as np
import pytest

from mnist_dvc.digits import cached_distortions as distortions_module
from mnist_dvc.digits.cached_distortions import augment, distort
from mnist_dvc.io.idx import read_split

STRENGTHS = dict(rotation_deg=10.0, shift_px=2.0, scale=0.1, shear_deg=10.0, elastic_alpha=8.0, elastic_sigma=3.0)
OFF = dict(rotation_deg=0.0, shift_px=0.0, scale=0.0, shear_deg=0.0, elastic_alpha=0.0, elastic_sigma=3.0)


@pytest.fixture(scope="module")
def digits(mnist_mirror):
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return images[:200], labels[:200]


def test_augment_appends_copies_after_the_originals(digits):
    images, labels = digits
    out_images, out_labels = augment(images, labels, 2, np.random.default_rng(0), **STRENGTHS)
    assert out_images.shape == (600, 28, 28) and out_images.dtype == np.uint8
    assert out_labels.dtype == np.uint8
    assert out_labels.tolist() == labels.tolist() * 3
    assert np.array_equal(out_images[:200], images)
    assert not np.array_equal(out_images[200:400], images)
    assert not np.array_equal(out_images[200:400], out_images[400:])  # each copy is a fresh distortion


def test_no_copies_gives_the_originals(digits):
    images, labels = digits
    out_images, out_labels = augment(images, labels, 0, np.random.default_rng(0), **STRENGTHS)
    assert np.array_equal(out_images, images) and np.array_equal(out_labels, labels)


def test_same_seed_same_output_other_seed_other_output(digits):
    images, _ = digits
    first = distort(images, np.random.default_rng(7), **STRENGTHS)
    again = distort(images, np.random.default_rng(7), **STRENGTHS)
    other = distort(images, np.random.default_rng(8), **STRENGTHS)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("kept", [None, *STRENGTHS.keys() - {"elastic_sigma"}])
def test_zero_strengths_give_back_the_input(digits, kept):
    """All off is the identity; each distortion alone changes the digits."""
    images, _ = digits
    strengths = OFF if kept is None else {**OFF, kept: STRENGTHS[kept]}
    out = distort(images, np.random.default_rng(0), **strengths)
    assert np.array_equal(out, images) == (kept is None)


def test_distortions_keep_the_digit_recognisable(digits):
    """Moderate distortions move ink around but keep most of it and most of its place."""
    images, _ = digits
    out = distort(images, np.random.default_rng(0), **STRENGTHS)
    ink_ratio = out.sum(axis=(1, 2)) / images.sum(axis=(1, 2))
    assert np.all(np.abs(ink_ratio - 1) < 0.35)
    overlap = (np.minimum(out, images).sum(axis=(1, 2)) / images.sum(axis=(1, 2))).mean()
    assert overlap > 0.4


def test_chunk_size_does_not_change_the_result(digits, monkeypatch):
    images, _ = digits
    whole = distort(images, np.random.default_rng(3), **STRENGTHS)
    monkeypatch.setattr(distortions_module, "_CHUNK", 64)  # several chunks, the last one partial
    assert np.array_equal(distort(images, np.random.default_rng(3), **STRENGTHS), whole)
