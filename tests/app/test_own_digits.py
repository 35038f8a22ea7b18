"""Predicting digits from outside MNIST with a real (small) trained model: the same digit gives the
same answer whatever its size, place, polarity and resampling in the picture; the probabilities and
verdicts are in the terms of the ambiguous stage's cutoffs; bad files and empty folders are set
aside; the sheet shows what the model was given, and no more than `SHEET_DIGITS` digits."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_dvc.analysis.ambiguity import load_cutoffs
from mnist_dvc.analysis.pictures import PICTURE_SIDE
from mnist_dvc.app import own_digits
from mnist_dvc.config import paths
from mnist_dvc.digits.kaggle_csv import PIXELS
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.io.stage_outputs import read_json
from mnist_dvc.models.inference import predict_proba
from mnist_dvc.models.saved import load_classifier, preparation

SHEET = 640  # side of the sheet each variant is drawn on
SIDES = (97, 280, 503)  # none a multiple of 28
CORNERS = ((10, 10), (120, 90))
RESAMPLING = (Image.Resampling.BILINEAR, Image.Resampling.LANCZOS)  # one per corner


@pytest.fixture(scope="module")
def summary(trained_project) -> dict:
    return read_json(trained_project / paths.AMBIGUOUS_SUMMARY, "ambiguous")


@pytest.fixture(scope="module")
def model(trained_project):
    """(classifier, preparation, cutoffs, temperature) of the trained project, as `mnist-dvc predict` reads them."""
    folder = trained_project / paths.MODEL
    return load_classifier(folder), preparation(folder), *load_cutoffs(trained_project / paths.AMBIGUOUS_SUMMARY)


@pytest.fixture(scope="module")
def test_set(trained_project) -> dict[str, np.ndarray]:
    return load_test_set(trained_project / paths.TEST_NPZ)


def picture(ink: np.ndarray, side: int, corner: tuple[int, int], dark_on_light: bool, resample: Image.Resampling) -> np.ndarray:
    """`ink` (uint8, 255 = ink) resized to `side` pixels with `resample` and placed at `corner` of a SHEET x SHEET sheet."""
    sheet = np.zeros((SHEET, SHEET), np.uint8)
    sheet[corner[0] : corner[0] + side, corner[1] : corner[1] + side] = np.asarray(Image.fromarray(ink).resize((side, side), resample))
    return 255 - sheet if dark_on_light else sheet


def drawn(strokes: list[list[tuple[int, int]]], ellipse: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A digit drawn with a 9-pixel pen on a 100x100 canvas: `strokes` (lists of points) and an optional ellipse."""
    canvas = Image.new("L", (100, 100), 0)
    pen = ImageDraw.Draw(canvas)
    for stroke in strokes:
        pen.line(stroke, fill=255, width=9, joint="curve")
    if ellipse:
        pen.ellipse(ellipse, outline=255, width=9)
    return np.asarray(canvas)


DRAWN = {
    0: drawn([], ellipse=(28, 8, 72, 92)),
    1: drawn([[(50, 8), (50, 92)]]),
    4: drawn([[(62, 8), (14, 64), (84, 64)], [(62, 30), (62, 94)]]),
    7: drawn([[(20, 15), (80, 15), (40, 88)]]),
}


def variants(ink: np.ndarray) -> list[np.ndarray]:
    """The same digit at 3 sizes, 2 places (each with its own resampling) and both polarities: 12 pictures."""
    return [picture(ink, side, corner, dark, resample)
            for side in SIDES for corner, resample in zip(CORNERS, RESAMPLING) for dark in (True, False)]


def predicted(pictures: list[np.ndarray], model, folder):
    """The `predict` table and the batch of `pictures`, saved as PNG files in `folder`."""
    for i, pixels in enumerate(pictures):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        (folder / f"{i:02d}.png").write_bytes(buffer.getvalue())
    classifier, prepared_as, cutoff, temperature = model
    batch = own_digits.from_files([folder], prepared_as)
    assert not batch.failures
    return own_digits.predict(classifier, batch, cutoff, temperature), batch


def alike(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 digits blurred by one pixel, the best over shifts of up to one pixel:
    each size samples the strokes at another sub-pixel phase and centring is to the whole pixel, so
    a two-pixel stroke one column over would otherwise look like another digit
    (tests/unit/digits/test_from_picture.py's `similarity`)."""
    a, b = (ndimage.gaussian_filter(digit.astype(np.float64), sigma=1.0) for digit in (a, b))
    return max(np.corrcoef(a.ravel(), np.roll(b, (rows, cols), axis=(0, 1)).ravel())[0, 1]
               for rows in (-1, 0, 1) for cols in (-1, 0, 1))


def assert_one_answer(pictures: list[np.ndarray], label: int, model, folder) -> None:
    """Every picture is read as `label`, and the 28x28 digits the model saw are `alike` (0.95 or more)."""
    table, batch = predicted(pictures, model, folder)
    assert table["prediction"].tolist() == [label] * len(pictures)
    assert min(alike(digit, batch.digits[0]) for digit in batch.digits) >= 0.95


@pytest.mark.parametrize("digit", sorted(DRAWN))
def test_a_drawn_digit_gets_one_answer_at_every_size_place_polarity_and_resampling(model, tmp_path, digit):
    assert_one_answer(variants(DRAWN[digit]), digit, model, tmp_path)


def test_real_test_digits_rendered_large_get_one_answer_each(model, tmp_path, test_set):
    classifier = model[0]
    probs = predict_proba(classifier, test_set["images"], 250)
    sure = np.flatnonzero((probs.max(axis=1) > 0.8) & (probs.argmax(axis=1) == test_set["labels"]))[:8]
    assert len(set(test_set["labels"][sure])) >= 4  # several different digits
    for position in sure:
        folder = tmp_path / str(position)
        folder.mkdir()
        assert_one_answer(variants(test_set["original"][position]), int(test_set["labels"][position]), model, folder)


def test_the_test_digits_flagged_are_those_the_ambiguous_stage_listed(model, tmp_path, test_set, summary):
    """The test set through the Kaggle CSV path, labels included: its probabilities are calibrated
    with the summary's temperature, as the stage's were, so each definition flags the digits the
    stage listed (a digit at the very cutoff may fall either way if the two computations differ in
    the last bit), about `top_n` each; raw probabilities would be judged against cutoffs in other terms."""
    rows = np.column_stack([test_set["labels"], test_set["original"].reshape(len(test_set["labels"]), -1)])
    (tmp_path / "test.csv").write_text("label," + ",".join(PIXELS) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    classifier, prepared_as, cutoff, temperature = model
    batch = own_digits.from_kaggle(tmp_path / "test.csv", prepared_as)
    assert np.array_equal(np.stack(batch.digits), test_set["images"])  # prepared as the stages prepared them
    table = own_digits.predict(classifier, batch, cutoff, temperature)
    definitions = table["ambiguous"].str.split("+")
    assert set(cutoff) == {"confident_wrong", "least_confident", "smallest_margin", "highest_entropy"}
    for name in cutoff:
        positions = {int(image_id) - 1 for image_id in table["name"][definitions.apply(lambda found: name in found)]}
        listed = {int(np.flatnonzero(test_set["index"] == digit["index"])[0]) for digit in summary[name]["digits"]}
        assert len(positions ^ listed) <= 1, (name, sorted(positions ^ listed))
    assert (table["ambiguous"] != "").sum() <= 4 * len(summary["least_confident"]["digits"])
    uncalibrated = own_digits.predict(classifier, batch, cutoff, 1.0)  # what this test guards against
    assert (uncalibrated["ambiguous"] != table["ambiguous"]).sum() > 10
    raw = predict_proba(classifier, test_set["images"], 250)
    assert not np.allclose(table["confidence"], raw.max(axis=1), atol=1e-3)  # the temperature changed them
    assert np.array_equal(table["prediction"], raw.argmax(axis=1))  # but never the digit


def test_unreadable_files_and_empty_folders_are_set_aside_and_the_rest_predicted(model, tmp_path):
    Image.fromarray(picture(DRAWN[7], 200, (50, 50), True, Image.Resampling.BILINEAR)).save(tmp_path / "seven.png")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("no pictures here")
    classifier, prepared_as, cutoff, temperature = model
    batch = own_digits.from_files([tmp_path, tmp_path / "nothing"], prepared_as, keep_inputs=5)
    assert batch.names == [str(tmp_path / "seven.png")] and len(batch.inputs) == 1
    assert [failure.split(":")[0] for failure in batch.failures] == [str(tmp_path / name) for name in ("blank.png", "empty.png", "nothing")]
    assert batch.failures[-1].startswith(f"{tmp_path / 'nothing'}: no image files in this folder")
    table = own_digits.predict(classifier, batch, cutoff, temperature)
    assert table["prediction"].tolist() == [7]


def test_the_kept_input_is_the_picture_as_read_transparency_flattened_and_shrunk(model, tmp_path):
    """Black ink on a see-through sheet (as paint programs save it): the sheet shows dark ink on
    white paper, as the digit was read, not the all-black picture the colour channels alone give."""
    coverage = picture(DRAWN[4], 300, (20, 20), False, Image.Resampling.BILINEAR)
    pixels = np.zeros(coverage.shape + (4,), np.uint8)
    pixels[..., 3] = coverage
    Image.fromarray(pixels).save(tmp_path / "four.png")
    batch = own_digits.from_files([tmp_path], model[1], keep_inputs=1)
    (kept,) = batch.inputs
    assert kept.dtype == np.uint8 and kept.shape == (PICTURE_SIDE, PICTURE_SIDE)  # the square the sheet draws it in
    expected = Image.fromarray(255 - coverage).resize(kept.shape[::-1], Image.Resampling.BOX)
    assert np.abs(kept.astype(int) - np.asarray(expected, dtype=int)).max() <= 2


def test_only_the_first_inputs_are_kept_and_the_sheet_shows_at_most_sheet_digits(model, tmp_path, monkeypatch, digit_places):
    for i in range(5):
        Image.fromarray(picture(DRAWN[7], 100 + 20 * i, (30, 30), True, Image.Resampling.BILINEAR)).save(tmp_path / f"{i}.png")
    classifier, prepared_as, cutoff, temperature = model
    batch = own_digits.from_files([tmp_path], prepared_as, keep_inputs=3)
    assert len(batch.names) == 5 and len(batch.inputs) == 3
    assert len(own_digits.from_files([tmp_path], prepared_as).inputs) == 0
    table = own_digits.predict(classifier, batch, cutoff, temperature)
    drawn_sheets = []
    monkeypatch.setattr(own_digits, "save_gallery", lambda images, captions, path, title, columns: drawn_sheets.append((images, title)))
    monkeypatch.setattr(own_digits, "SHEET_DIGITS", 3)
    assert own_digits.save_sheet(batch, table, tmp_path / "sheet.png") == 3
    images, title = drawn_sheets[-1]
    assert len(images) == 6 and title.endswith("the first 3 of 5 digits")  # input and 28x28 digit of each
    assert images[1] is batch.digits[0] and images[0] is batch.inputs[0]
    with pytest.raises(ValueError, match="kept 0 inputs"):
        own_digits.save_sheet(own_digits.from_files([tmp_path], prepared_as), table, tmp_path / "sheet.png")
    monkeypatch.undo()
    assert own_digits.SHEET_DIGITS == 100
    assert own_digits.save_sheet(batch, table.head(3), tmp_path / "sheet.png") == 3  # all of them: drawn for real
    with Image.open(tmp_path / "sheet.png") as sheet:
        page = np.asarray(sheet.convert("RGB"))
    for kept, digit in zip(batch.inputs, batch.digits):  # each input pixel for pixel, each digit four times larger
        assert digit_places(page, kept, scale=1) and digit_places(page, digit, scale=4)
