"""The scikit-learn baselines on a small real slice of MNIST: probabilities, accuracy, saving."""

import pickle

import numpy as np
import pytest

from mnist_dvc.config.params import CLASSICAL_MODELS
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split
from mnist_dvc.models import classical

SETTINGS = {"pca_components": 30, "svc_c": 10.0, "knn_neighbors": 3, "seed": 0}


@pytest.fixture(scope="module")
def data(mnist_mirror, mnist_train):
    train = mnist_train
    test = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return (train[0][:1000], train[1][:1000]), (test[0][:500], test[1][:500])


@pytest.fixture(scope="module", params=CLASSICAL_MODELS)
def fitted(request, data):
    (images, labels), _ = data
    return request.param, classical.fit(request.param, images, labels, **SETTINGS)


def test_probabilities_are_distributions_that_beat_chance(fitted, data):
    name, estimator = fitted
    _, (images, labels) = data
    probs = classical.predict_proba(estimator, images)
    assert probs.dtype == np.float32 and probs.shape == (500, 10)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.mean(probs.argmax(axis=1) == labels) > 0.85, name


def test_save_load_round_trip_gives_the_same_probabilities(fitted, data, tmp_path):
    _, estimator = fitted
    _, (images, _) = data
    classical.save(estimator, tmp_path / "model.pkl")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pkl"]  # no temporary file left behind
    restored = classical.load(tmp_path / "model.pkl")
    # Pickling stores PCA's components contiguously where the fitted ones are a strided view, so
    # float32 BLAS may round differently in the last bit: equal up to that, and exactly repeatable.
    probs = classical.predict_proba(restored, images)
    np.testing.assert_allclose(probs, classical.predict_proba(estimator, images), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(probs, classical.predict_proba(classical.load(tmp_path / "model.pkl"), images))


def test_same_seed_same_svc(data):
    (images, labels), (test_images, _) = data
    first, second = (classical.fit("svc", images[:300], labels[:300], **SETTINGS) for _ in range(2))
    np.testing.assert_array_equal(classical.predict_proba(first, test_images), classical.predict_proba(second, test_images))


def test_a_digit_missing_from_training_gets_probability_zero(data):
    (images, labels), (test_images, _) = data
    keep = labels != 7
    estimator = classical.fit("knn", images[keep], labels[keep], **SETTINGS)
    probs = classical.predict_proba(estimator, test_images)
    assert probs.shape == (500, 10) and np.all(probs[:, 7] == 0)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"certainly not a pickle", "not a readable saved model"),
        (pickle.dumps({"model": "svc"}), "holds a dict"),
    ],
)
def test_corrupt_model_file_is_a_user_error(tmp_path, content, message):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        classical.load(path)
    assert str(path) in str(error.value)


def test_missing_model_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="model.pkl: not found"):
        classical.load(tmp_path / "model.pkl")


def test_an_unknown_baseline_is_a_value_error(data):
    """(train.model is checked by the params schema first; whether pca_components and knn_neighbors
    fit the data is the train stage's check, tests/stages/test_train.py.)"""
    (images, labels), _ = data
    with pytest.raises(ValueError, match=r"'vgg_bn' is not one of \('svc', 'knn'\)"):
        classical.fit("vgg_bn", images, labels, **SETTINGS)
