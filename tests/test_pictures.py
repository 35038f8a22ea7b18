"""Digit PNGs keep exact pixels, galleries are valid PNGs, and equal inputs give equal bytes."""

import numpy as np
import pytest
from PIL import Image

from stages.lib.pictures import digit_caption, save_digit_png, save_gallery, upscale

DIGIT = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28).astype(np.uint8)


def test_upscale_repeats_each_pixel():
    assert upscale(np.array([[1, 2]], dtype=np.uint8), 2).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


def test_digit_png_has_exact_upscaled_pixels(tmp_path):
    path = tmp_path / "sub" / "7.png"
    save_digit_png(DIGIT, path, scale=4)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "L" and image.size == (112, 112)
        pixels = np.asarray(image)
    assert np.array_equal(pixels[::4, ::4], DIGIT)
    assert np.array_equal(pixels, upscale(DIGIT, 4))
    assert [p.name for p in path.parent.iterdir()] == ["7.png"]  # no temporary file left behind


def test_digit_png_rejects_a_non_image(tmp_path):
    with pytest.raises(ValueError):
        save_digit_png(DIGIT.astype(np.float32), tmp_path / "x.png")


def rows(n: int) -> list[dict]:
    return [
        {"index": 1000 + i, "label": i % 10, "prediction": (i + 1) % 10, "confidence": 0.5,
         "second": i % 10, "second_confidence": 0.4}
        for i in range(n)
    ]


def test_gallery_is_a_deterministic_png(tmp_path):
    images = [np.roll(DIGIT, i) for i in range(13)]
    captions = [digit_caption(row) for row in rows(13)]
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    for path in (first, second):
        save_gallery(images, captions, path, title="thirteen digits", columns=5, wrong=[i % 2 == 0 for i in range(13)])
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as image:
        image.verify()
    with Image.open(first) as image:
        width, height = image.size
        assert image.info.get("Software") is None
    assert width == pytest.approx(5 * 125, abs=2) and height == pytest.approx(3 * 170 + 50, abs=2)  # one title line


def test_empty_gallery_still_writes_a_png(tmp_path):
    save_gallery([], [], tmp_path / "empty.png", title="nothing")
    with Image.open(tmp_path / "empty.png") as image:
        image.verify()


def test_gallery_needs_one_caption_per_image(tmp_path):
    with pytest.raises(ValueError):
        save_gallery([DIGIT], [], tmp_path / "x.png", title="t")


def test_caption_names_index_truth_prediction_and_runner_up():
    assert digit_caption(rows(1)[0]) == "#1000\ntrue 0  pred 1\np=0.500  2nd 0"

