"""Nearest neighbours on hand-made 2-D points and saliency of models whose gradient is known."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.spatial.distance import cdist

from stages.lib.explain import embed, nearest, saliency
from stages.lib.models import build_model, init_rngs

# position: point, label
BANK = np.array([[0, 0], [1, 0], [5, 5], [0, 2], [6, 5], [0, 1], [9, 9]], dtype=np.float32)
BANK_LABELS = np.array([3, 3, 8, 3, 8, 7, 8])


def test_nearest_bank_digits_of_the_asked_class_nearest_first():
    queries = np.array([[0, 0.2], [0, 0.2], [5.4, 5]], dtype=np.float32)
    found = nearest(queries, BANK, BANK_LABELS, classes=np.array([3, 7, 8]), k=2)
    assert found.dtype == np.int64
    # Near the origin: of the 3s, position 0 (distance 0.2) then 1 (1.02), not 5 (a 7, nearer still).
    np.testing.assert_array_equal(found, [[0, 1], [5, -1], [2, 4]])


def test_fewer_bank_digits_than_k_pad_with_minus_one():
    found = nearest(np.zeros((2, 2)), BANK, BANK_LABELS, classes=np.array([7, 5]), k=3)
    np.testing.assert_array_equal(found, [[5, -1, -1], [-1, -1, -1]])


def test_equal_distances_go_to_the_lower_position():
    found = nearest(np.array([[0.5, 0.0]]), BANK, BANK_LABELS, classes=np.array([3]), k=3)
    np.testing.assert_array_equal(found, [[0, 1, 3]])


def test_chunked_search_matches_brute_force():
    rng = np.random.default_rng(0)
    bank, labels = rng.standard_normal((2000, 16)), rng.integers(0, 10, 2000)
    queries, classes = rng.standard_normal((300, 16)), rng.integers(0, 10, 300)
    distance = cdist(queries, bank)
    distance[classes[:, None] != labels[None, :]] = np.inf
    np.testing.assert_array_equal(nearest(queries, bank, labels, classes, k=5, chunk=7), np.argsort(distance, axis=1)[:, :5])


@pytest.mark.parametrize("queries, classes, k", [
    (np.zeros((1, 3)), np.array([3]), 1),  # wrong dimension
    (np.zeros((1, 2)), np.array([3, 3]), 1),  # one class too many
    (np.zeros((1, 2)), np.array([3]), 0),
])
def test_mismatched_shapes_raise(queries, classes, k):
    with pytest.raises(ValueError):
        nearest(queries, BANK, BANK_LABELS, classes, k=k)


IMAGES = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
WEIGHTS = jnp.asarray(np.random.default_rng(1).standard_normal((10, 784)), dtype=jnp.float32)
BIAS = jnp.arange(10, dtype=jnp.float32)


def linear(x):
    return x.reshape(len(x), -1) @ WEIGHTS.T + BIAS


def constant(x):
    return jnp.broadcast_to(BIAS, (len(x), 10))


def test_saliency_of_a_linear_model_is_the_difference_of_its_top_two_weight_rows():
    logits = np.asarray(linear(IMAGES.astype(np.float32)[..., None] / 255))
    top, second = np.argsort(-logits, axis=1)[:, :2].T
    expected = (np.asarray(WEIGHTS)[top] - np.asarray(WEIGHTS)[second]).reshape(-1, 28, 28)
    found = saliency(linear, IMAGES)
    assert found.shape == (4, 28, 28) and found.dtype == np.float32
    np.testing.assert_allclose(found, expected, rtol=1e-6)


def test_saliency_of_a_model_that_ignores_the_image_is_zero():
    np.testing.assert_array_equal(saliency(constant, IMAGES), np.zeros((4, 28, 28), np.float32))


class TinyNet(nnx.Module):
    """A convolution, BatchNorm and a 16-number embedding: just enough of a real model."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), strides=(2, 2), rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.hidden = nnx.Linear(14 * 14 * 4, 16, rngs=rngs)
        self.out = nnx.Linear(16, 10, rngs=rngs)

    def embed(self, x):
        return nnx.relu(self.hidden(nnx.relu(self.norm(self.conv(x))).reshape(len(x), -1)))

    def __call__(self, x):
        return self.out(self.embed(x))


@pytest.fixture(scope="module")
def tiny_net():
    model = TinyNet(init_rngs(0))
    model.eval()
    return model


def test_saliency_of_an_nnx_model_is_finite_and_per_digit(tiny_net):
    found = saliency(tiny_net, IMAGES)
    assert found.shape == (4, 28, 28) and np.isfinite(found).all() and (found != 0).any()
    # Each digit's saliency is its own: the same digit alone gives the same map.
    np.testing.assert_allclose(saliency(tiny_net, IMAGES[1:2])[0], found[1], rtol=1e-5, atol=1e-6)


def test_embeddings_are_the_model_s_whatever_the_batch_size(tiny_net):
    direct = np.asarray(tiny_net.embed(IMAGES.astype(np.float32)[..., None] / 255))
    for batch_size in (4, 3, 100):
        found = embed(tiny_net.embed, IMAGES, batch_size=batch_size)
        assert found.shape == (4, 16) and found.dtype == np.float32
        np.testing.assert_allclose(found, direct, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        embed(tiny_net.embed, IMAGES[:0])


def test_saliency_of_the_default_model_in_eval_mode():
    model = build_model("vgg_bn", width=4, rngs=init_rngs(0))
    model.eval()
    found = saliency(model, IMAGES)
    assert found.shape == (4, 28, 28) and np.isfinite(found).all() and (found != 0).any()
