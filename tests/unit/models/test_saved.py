"""A trained model's folder: saved networks and baselines load back as the same probabilities,
and every problem with model.json or the weights is one error naming the file."""

import json

import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.models import classical
from mnist_dvc.models.inference import neural_classifier
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import load_classifier, load_network, preparation, read_description, save_classical, save_neural

IMAGES = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
DESKEWED = {"deskew": True}  # preprocess's preparation.json, kept with the model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model = build_model("vgg_bn", width=8, rngs=init_rngs(5))
    model.eval()
    save_neural(folder, model, "vgg_bn", 8, DESKEWED)
    return folder, model


def test_a_saved_network_gives_the_same_probabilities(saved):
    folder, model = saved
    assert sorted(path.name for path in folder.iterdir()) == ["model.json", "model.msgpack"]
    assert json.loads((folder / "model.json").read_text()) == {"model": "vgg_bn", "width": 8, "parameters": 6274,
                                                               "preparation": DESKEWED}
    probs = load_classifier(folder)(IMAGES)
    np.testing.assert_allclose(probs, neural_classifier(model)(IMAGES), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_a_saved_network_loads_as_itself_in_eval_mode_and_a_baseline_as_none(saved, tmp_path):
    folder, model = saved
    network = load_network(folder)
    inputs = IMAGES[..., None].astype(np.float32) / 255
    # Eval mode: BatchNorm uses its stored statistics, so a batch gives the saved model's answers exactly.
    np.testing.assert_array_equal(network.embed(inputs), model.embed(inputs))
    np.testing.assert_array_equal(network(inputs), model(inputs))
    (tmp_path / "model.json").write_text('{"model": "svc", "preparation": {"deskew": false, "stroke_width": null}}')
    assert load_network(tmp_path) is None  # no hidden layer, no gradient: nothing to load


def test_a_saved_baseline_gives_the_same_probabilities(mnist_train, tmp_path):
    images, labels = mnist_train
    estimator = classical.fit("knn", images[:300], labels[:300], pca_components=20, svc_c=1.0, knn_neighbors=3, seed=0)
    save_classical(tmp_path, estimator, "knn", {"deskew": False})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.json", "model.pkl"]
    assert json.loads((tmp_path / "model.json").read_text()) == {"model": "knn", "preparation": {"deskew": False}}
    digits = images[300:340]
    np.testing.assert_allclose(load_classifier(tmp_path)(digits), classical.predict_proba(estimator, digits), rtol=1e-5, atol=1e-7)


def test_the_description_says_which_model_it_is_and_how_its_digits_were_prepared(saved):
    assert read_description(saved[0]) == {"model": "vgg_bn", "width": 8, "parameters": 6274, "preparation": DESKEWED}
    assert preparation(saved[0]) == DESKEWED


@pytest.mark.parametrize("described", ['{"model": "knn"}', '{"model": "knn", "preparation": {"deskew": "yes"}}'])
def test_a_model_that_does_not_say_how_its_digits_were_prepared_is_named(tmp_path, described):
    (tmp_path / "model.json").write_text(described)
    with pytest.raises(UserError, match=r"model\.json: says nothing of how its digits were prepared; rerun the train stage"):
        preparation(tmp_path)


@pytest.mark.parametrize(
    "text, message",
    [
        (None, r"model\.json: not found; run the train stage first"),
        ("{not json", r"model\.json: corrupt, not JSON"),
        ("[1, 2]", r"model\.json: unknown model None"),
        ('{"model": "resnet9000"}', r"model\.json: unknown model 'resnet9000'; expected one of vgg_bn, .*knn"),
        ('{"model": "vgg_bn"}', r"model\.json: `width` must be a positive integer for vgg_bn, got None"),
        ('{"model": "vgg_bn", "width": 0}', r"`width` must be a positive integer for vgg_bn, got 0"),
        ('{"model": "vgg_bn", "width": true}', r"`width` must be a positive integer for vgg_bn, got True"),
        ('{"model": "flat_mlp", "width": "8"}', r"`width` must be a positive integer for flat_mlp, got '8'"),
    ],
    ids=["missing", "not-json", "not-a-mapping", "unknown-model", "no-width", "zero-width", "bool-width", "text-width"],
)
def test_a_bad_description_is_named(tmp_path, text, message):
    if text is not None:
        (tmp_path / "model.json").write_text(text)
    with pytest.raises(UserError, match=message) as error:
        load_classifier(tmp_path)
    assert str(tmp_path / "model.json") in str(error.value)


def test_a_baseline_needs_no_width(tmp_path):
    (tmp_path / "model.json").write_text('{"model": "svc"}')
    assert read_description(tmp_path) == {"model": "svc"}


def test_missing_weights_are_named(tmp_path):
    (tmp_path / "model.json").write_text('{"model": "vgg_bn", "width": 8}')
    with pytest.raises(UserError, match=r"model\.msgpack: not found"):
        load_classifier(tmp_path)
    (tmp_path / "model.json").write_text('{"model": "knn"}')
    with pytest.raises(UserError, match=r"model\.pkl: not found"):
        load_classifier(tmp_path)


def test_weights_of_another_width_are_rejected(saved, tmp_path):
    (tmp_path / "model.msgpack").write_bytes((saved[0] / "model.msgpack").read_bytes())
    (tmp_path / "model.json").write_text('{"model": "vgg_bn", "width": 16}')
    with pytest.raises(UserError, match=r"model\.msgpack: array \d+ is float32\[[\d, ]+\], but this model needs float32"):
        load_classifier(tmp_path)
