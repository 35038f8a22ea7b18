"""Digit PNGs keep exact pixels, galleries (plain and explained) show every digit with its exact
pixels, enlarged by a whole factor, saliency maps have diverging colours, and equal inputs give
equal bytes."""

import numpy as np
import pytest
from PIL import Image

from mnist_dvc.analysis.pictures import (
    PICTURE_SIDE,
    ExplainedRow,
    NeighbourGroup,
    digit_caption,
    saliency_picture,
    save_digit_png,
    save_explained_gallery,
    save_gallery,
    upscale,
)

DIGIT = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28).astype(np.uint8)


def test_upscale_repeats_each_pixel():
    assert upscale(np.array([[1, 2]], dtype=np.uint8), 2).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    colours = upscale(np.array([[[1, 2, 3]]], dtype=np.uint8), 2)
    assert colours.shape == (2, 2, 3) and (colours == [1, 2, 3]).all()


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


def test_gallery_is_a_deterministic_png_of_every_digit_four_times_larger_in_reading_order(tmp_path, digit_places):
    images = [np.roll(DIGIT, i) for i in range(13)]
    captions = [digit_caption(row) for row in rows(13)]
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    for path in (first, second):
        save_gallery(images, captions, path, title="thirteen digits", columns=5, wrong=[i % 2 == 0 for i in range(13)])
    assert first.read_bytes() == second.read_bytes()
    with Image.open(first) as image:
        image.verify()
    with Image.open(first) as image:
        assert image.info.get("Software") is None and image.mode == "RGB"
        page = np.asarray(image)
    places = [digit_places(page, image, scale=4) for image in images]
    assert all(len(found) == 1 for found in places)
    places = [found[0] for found in places]
    assert places == sorted(places)  # row by row, left to right
    assert len({top for top, _ in places}) == 3 and len({left for _, left in places}) == 5
    first_row = (page[places[0][0] : places[5][0], ..., 0] > 150) & (page[places[0][0] : places[5][0], ..., 1] < 100)  # red
    assert first_row[:, : places[1][1]].any() and not first_row[:, places[1][1] : places[2][1]].any()  # wrong: 0, 2, 4, ...


def test_a_picture_of_another_size_is_enlarged_by_the_largest_whole_factor_that_fits(tmp_path, digit_places):
    tall, small = (np.arange(n, dtype=np.uint8).reshape(shape) for n, shape in ((112 * 50, (112, 50)), (30 * 20, (30, 20))))
    save_gallery([tall, small], ["input", "input"], tmp_path / "sheet.png", title="inputs")
    with Image.open(tmp_path / "sheet.png") as image:
        page = np.asarray(image)
    assert len(digit_places(page, tall, scale=1)) == 1 and len(digit_places(page, small, scale=PICTURE_SIDE // 30)) == 1
    with pytest.raises(ValueError, match="does not fit"):
        save_gallery([np.zeros((PICTURE_SIDE + 1, 10), np.uint8)], ["too tall"], tmp_path / "x.png", title="t")


def test_empty_gallery_still_writes_a_png(tmp_path):
    save_gallery([], [], tmp_path / "empty.png", title="nothing")
    with Image.open(tmp_path / "empty.png") as image:
        image.verify()


def test_gallery_needs_one_caption_per_image(tmp_path):
    with pytest.raises(ValueError):
        save_gallery([DIGIT], [], tmp_path / "x.png", title="t")


def test_caption_names_index_truth_prediction_and_runner_up():
    assert digit_caption(rows(1)[0]) == "#1000\ntrue 0  pred 1\np=0.500  2nd 0"



# --- explained galleries ------------------------------------------------------------------------

SALIENCY = np.zeros((28, 28), np.float32)
SALIENCY[5, 5], SALIENCY[20, 20], SALIENCY[10, 10] = 2.0, -2.0, 1.0


def test_saliency_is_red_where_positive_blue_where_negative_and_white_at_zero_over_the_faint_digit():
    blank = np.zeros((28, 28), np.uint8)
    picture = saliency_picture(SALIENCY, blank)
    assert picture.shape == (28, 28, 3) and picture.dtype == np.uint8
    red, blue, half, zero = picture[5, 5], picture[20, 20], picture[10, 10], picture[0, 0]
    assert red[0] > 150 > red[2] and blue[2] > 150 > blue[0]  # the strongest of each sign, saturated
    assert zero.tolist() == [255, 255, 255] and (half < 255).any() and (half > red).any()  # half as strong: paler
    # Centred on zero: a map and its negative swap the two colours.
    np.testing.assert_array_equal(saliency_picture(-SALIENCY, blank)[5, 5], blue)
    # Where the map is zero the digit shows faintly: ink is light grey, never black.
    ink = saliency_picture(np.zeros((28, 28)), np.full((28, 28), 255, np.uint8))
    assert (ink == ink[0, 0, 0]).all() and 150 < ink[0, 0, 0] < 255


def explained_row(neighbours: int = 5, wrong: bool = False) -> ExplainedRow:
    groups = [NeighbourGroup(f"nearest {digit}s", [np.roll(DIGIT, i) for i in range(neighbours)], [f"#{i}" for i in range(neighbours)])
              for digit in (7, 1)]
    return ExplainedRow(DIGIT, "#7\ntrue 1  pred 7\np=0.900", wrong, DIGIT, SALIENCY, "red 7, blue 1", groups)


def test_explained_gallery_is_a_deterministic_png_with_a_row_per_digit(tmp_path):
    one, three, again = tmp_path / "one.png", tmp_path / "three.png", tmp_path / "again.png"
    save_explained_gallery([explained_row()], one, title="one digit")
    for path in (three, again):
        save_explained_gallery([explained_row(), explained_row(wrong=True), explained_row(neighbours=2)], path, title="three digits")
    assert three.read_bytes() == again.read_bytes()
    with Image.open(one) as first, Image.open(three) as second:
        assert first.info.get("Software") is None and first.mode == "RGB"
        (width, height), (width_3, height_3) = first.size, second.size
        pixels = np.asarray(second).astype(int)
    row_height = (height_3 - height) / 2
    assert width == width_3 and 100 < row_height < 200  # one row per digit, each row a few lines taller than a digit
    assert 12 * 28 * 3 < width < 1300  # a digit, its saliency and two groups of five, 3x larger, side by side
    red = (pixels[..., 0] > 150) & (pixels[..., 2] < 100)
    blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 100)
    assert red.sum() >= 3 * 9 and blue.sum() >= 3 * 9  # each digit's saliency: a red and a blue 3x3 pixel at least


def test_empty_explained_gallery_still_writes_a_png(tmp_path):
    save_explained_gallery([], tmp_path / "empty.png", title="nothing to explain")
    with Image.open(tmp_path / "empty.png") as image:
        image.verify()
