"""Model files: a saved network loads back as the same probabilities; bad files are named."""

import json

import jax
import numpy as np
import pytest

from stages.errors import UserError
from stages.models import build_model, init_rngs
from stages.predict import TTA_SHIFTS, load_classifier, predict_proba, save_neural, shifted


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model = build_model("vgg_bn", width=8, rngs=init_rngs(5))
    model.eval()
    save_neural(folder, model, "vgg_bn", 8)
    return folder, model


def test_a_saved_model_gives_the_same_probabilities(saved):
    folder, model = saved
    images = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    probs = load_classifier(folder)(images)
    expected = jax.nn.softmax(model((images / 255.0).astype(np.float32)[..., None]))
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert json.loads((folder / "model.json").read_text()) == {"model": "vgg_bn", "width": 8, "parameters": 6274}


def test_batches_of_any_size_give_the_same_result(saved):
    classifier = load_classifier(saved[0])
    images = np.random.default_rng(1).integers(0, 256, (23, 28, 28), dtype=np.uint8)
    np.testing.assert_allclose(predict_proba(classifier, images, 7), predict_proba(classifier, images, 64), rtol=1e-5, atol=1e-6)


def test_shifts_move_whole_pixels_and_leave_blank_edges():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    np.testing.assert_array_equal(shifted(images, 0, 0), images)
    down = shifted(images, 1, 0)
    np.testing.assert_array_equal(down[:, 1:], images[:, :-1])
    assert not down[:, 0].any()
    left = shifted(images, 0, -1)
    np.testing.assert_array_equal(left[:, :, :-1], images[:, :, 1:])
    assert not left[:, :, -1].any()


def test_test_time_augmentation_averages_the_digit_and_its_four_shifts(saved):
    classifier = load_classifier(saved[0])
    images = np.random.default_rng(2).integers(0, 256, (9, 28, 28), dtype=np.uint8)
    assert sorted(TTA_SHIFTS) == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]
    expected = np.mean([classifier(shifted(images, *shift)) for shift in TTA_SHIFTS], axis=0)
    averaged = predict_proba(classifier, images, 4, tta=True)
    np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(averaged, predict_proba(classifier, images, 4))


def test_missing_and_broken_descriptions_are_named(tmp_path):
    with pytest.raises(UserError, match=r"model\.json: not found"):
        load_classifier(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(UserError, match=r"model\.json: corrupt"):
        load_classifier(tmp_path)
    (tmp_path / "model.json").write_text('{"model": "resnet9000"}')
    with pytest.raises(UserError, match=r"model\.json: unknown model 'resnet9000'"):
        load_classifier(tmp_path)


def test_weights_of_another_width_are_rejected(saved, tmp_path):
    (tmp_path / "model.msgpack").write_bytes((saved[0] / "model.msgpack").read_bytes())
    (tmp_path / "model.json").write_text('{"model": "vgg_bn", "width": 16}')
    with pytest.raises(UserError, match=r"model\.msgpack: array \d+ is float32\[[\d, ]+\], but this model needs float32"):
        load_classifier(tmp_path)
