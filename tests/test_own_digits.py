"""Predicting digits from outside MNIST with a real (small) trained model: the same digit gives the
same answer whatever its size, place and polarity in the picture; bad files are set aside."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stages.lib import own_digits, paths
from stages.lib.ambiguity import cutoffs
from stages.lib.inference import predict_proba
from stages.lib.model_files import load_classifier, preparation
from stages.lib.npz import read_json


@pytest.fixture(scope="module")
def model(trained_project):
    folder = trained_project / paths.MODEL
    return load_classifier(folder), preparation(folder), cutoffs(read_json(trained_project / paths.AMBIGUOUS_SUMMARY, "ambiguous"))


def picture(ink: np.ndarray, side: int, corner: tuple[int, int], dark_on_light: bool) -> np.ndarray:
    """`ink` (uint8, 255 = ink) scaled to `side` pixels and placed at `corner` of a 400x400 sheet."""
    sheet = np.zeros((400, 400), np.uint8)
    sheet[corner[0] : corner[0] + side, corner[1] : corner[1] + side] = np.asarray(Image.fromarray(ink).resize((side, side), Image.Resampling.NEAREST))
    return 255 - sheet if dark_on_light else sheet


def drawn_seven() -> np.ndarray:
    canvas = Image.new("L", (100, 100), 0)
    ImageDraw.Draw(canvas).line([(20, 15), (80, 15), (40, 88)], fill=255, width=9, joint="curve")
    return np.asarray(canvas)


def variants(ink: np.ndarray) -> list[np.ndarray]:
    """The same digit at 3 sizes, 2 places and both polarities: 12 pictures."""
    return [picture(ink, side, corner, dark) for side in (84, 168, 280) for corner in ((10, 10), (110, 90)) for dark in (True, False)]


def predictions_of(pictures: list[np.ndarray], model, tmp_path) -> list[int]:
    for i, pixels in enumerate(pictures):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        (tmp_path / f"{i:02d}.png").write_bytes(buffer.getvalue())
    classifier, prepared_as, cutoff = model
    batch = own_digits.from_files([tmp_path], prepared_as)
    assert not batch.failures
    return own_digits.predict(classifier, batch, cutoff)["prediction"].tolist()


def test_a_drawn_digit_gets_one_answer_at_every_size_place_and_polarity(model, tmp_path):
    assert predictions_of(variants(drawn_seven()), model, tmp_path) == [7] * 12


def test_real_test_digits_rendered_large_get_one_answer_each(model, tmp_path, trained_project):
    from stages.lib.prepared import load_test_set

    classifier, prepared_as, _ = model
    test = load_test_set(trained_project / paths.TEST_NPZ)
    probs = predict_proba(classifier, test["images"], 250)
    sure = np.flatnonzero((probs.max(axis=1) > 0.8) & (probs.argmax(axis=1) == test["labels"]))[:8]
    for position in sure:
        folder = tmp_path / str(position)
        folder.mkdir()
        answers = predictions_of(variants(test["original"][position]), model, folder)
        assert answers == [int(test["labels"][position])] * 12, position


def test_unreadable_files_are_set_aside_and_the_rest_predicted(model, tmp_path):
    Image.fromarray(picture(drawn_seven(), 200, (50, 50), True)).save(tmp_path / "seven.png")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    classifier, prepared_as, cutoff = model
    batch = own_digits.from_files([tmp_path], prepared_as, keep_inputs=True)
    assert batch.names == [str(tmp_path / "seven.png")] and len(batch.inputs) == 1
    assert [failure.split(":")[0] for failure in batch.failures] == [str(tmp_path / "blank.png"), str(tmp_path / "empty.png")]
    table = own_digits.predict(classifier, batch, cutoff)
    assert table["prediction"].tolist() == [7]
