"""Stroke width: measured plausibly on pens of known width and on MNIST; normalising brings a fine-pen
and a marker-pen version of one digit to nearly the same width, keeps digits recognisable, leaves
blank images blank, and gives the same result every time and in any batch."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mnist_dvc.digits.stroke import normalise_strokes, stroke_widths
from mnist_dvc.io.idx import read_images

TARGET = 2.7  # about MNIST's median width


def draw_two(pen: float, supersample: int = 10) -> np.ndarray:
    """A '2' written with a pen `pen` pixels wide at 28x28, drawn 10x larger and area-averaged down
    (so the pen's width is exact to a tenth of a pixel and the edges are anti-aliased like MNIST's)."""
    sheet = Image.new("L", (28 * supersample, 28 * supersample), 0)
    points = [(8, 9), (11, 5), (16, 5), (19, 9), (18, 13), (9, 23), (20, 23)]
    ImageDraw.Draw(sheet).line([(x * supersample, y * supersample) for x, y in points], fill=255,
                               width=round(pen * supersample), joint="curve")
    return np.asarray(sheet.resize((28, 28), Image.Resampling.BOX))


@pytest.fixture(scope="module")
def mnist_test_digits(mnist_mirror) -> np.ndarray:
    return read_images(mnist_mirror / "t10k-images-idx3-ubyte.gz")


def test_widths_of_pens_of_known_width():
    pens = np.array([2.0, 3.0, 4.0, 5.0])
    widths = stroke_widths(np.stack([draw_two(pen) for pen in pens]))
    assert widths.dtype == np.float64 and widths.shape == (4,)
    assert np.all(np.abs(widths - pens) <= 0.15 * pens)
    assert np.all(np.diff(widths) > 0.5)
    # A one-pixel pen at 28x28 is spread over two pixels by anti-aliasing: it reads wider, but thinnest.
    assert stroke_widths(draw_two(1.0)[None])[0] < widths[0]


def test_mnist_widths_are_plausible(mnist_test_digits):
    widths = stroke_widths(mnist_test_digits)
    assert 2.0 <= np.median(widths) <= 3.0
    assert np.percentile(widths, 5) > 1.0 and np.percentile(widths, 95) < 6.0


def test_fine_and_bold_pens_end_up_alike():
    fine, bold = draw_two(1.2), draw_two(4.5)
    before = stroke_widths(np.stack([fine, bold]))
    after = stroke_widths(normalise_strokes(np.stack([fine, bold]), TARGET))
    assert before[1] - before[0] > 2.5
    assert abs(after[1] - after[0]) < 0.1 * (before[1] - before[0])
    assert np.all(np.abs(after - TARGET) < 0.3)
    # and they now look alike: the two renderings differ far less pixel by pixel
    normalised = normalise_strokes(np.stack([fine, bold]), TARGET).astype(int)
    assert np.abs(normalised[0] - normalised[1]).mean() < 0.3 * np.abs(fine.astype(int) - bold).mean()


def test_mnist_digits_move_to_the_target_and_stay_recognisable(mnist_test_digits):
    digits = mnist_test_digits[:2000]
    normalised = normalise_strokes(digits, TARGET)
    assert normalised.dtype == np.uint8 and normalised.shape == digits.shape
    spread_before = np.percentile(stroke_widths(digits), [10, 90])
    spread_after = np.percentile(stroke_widths(normalised), [10, 90])
    assert np.ptp(spread_after) < 0.25 * np.ptp(spread_before)
    assert np.all(np.abs(spread_after - TARGET) < 0.3)
    correlation = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(digits.astype(float), normalised.astype(float))]
    assert np.median(correlation) > 0.95


def test_digit_at_the_target_is_nearly_unchanged():
    digit = draw_two(3.0)[None]
    width = stroke_widths(digit)[0]
    assert np.abs(normalise_strokes(digit, width).astype(int) - digit).max() <= 1


def test_blank_stays_blank():
    blank = np.zeros((3, 28, 28), dtype=np.uint8)
    assert np.array_equal(stroke_widths(blank), np.zeros(3))
    assert np.array_equal(normalise_strokes(blank, TARGET), blank)
    mixed = np.stack([draw_two(2.0), blank[0], draw_two(4.0)])
    out = normalise_strokes(mixed, TARGET)
    assert not out[1].any() and out[0].any() and out[2].any()


def test_deterministic_and_independent_of_the_batch(mnist_test_digits):
    """Same input, same bytes; and a digit comes out the same alone or in a batch of thousands."""
    digits = mnist_test_digits[:5000]
    first = normalise_strokes(digits, TARGET)
    assert np.array_equal(first, normalise_strokes(digits, TARGET))
    for index in (0, 4095, 4096, 4999):
        assert np.array_equal(normalise_strokes(digits[index : index + 1], TARGET)[0], first[index])
        assert stroke_widths(digits[index : index + 1])[0] == pytest.approx(stroke_widths(digits)[index])


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        stroke_widths(np.zeros((28, 28), dtype=np.uint8))
    for target in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            normalise_strokes(np.zeros((1, 28, 28), dtype=np.uint8), target)
    assert normalise_strokes(np.zeros((0, 28, 28), dtype=np.uint8), TARGET).shape == (0, 28, 28)
    assert stroke_widths(np.zeros((0, 28, 28), dtype=np.uint8)).shape == (0,)
