"""The neural model zoo: every model builds, maps a batch of digits to 10 finite logits, has the
parameter count of the network it reproduces, computes its logits from its embedding, and is the
same model from the same seed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from mnist_dvc.config.params import NEURAL_MODELS
from mnist_dvc.models.networks import MODELS, build_model, count_params, init_rngs, max_pool_2x2

WIDTH = 8
SHIPPED_WIDTH = 24  # params.yaml's train.width, at which docs/models.md lists vgg_bn's parameters

# Parameters as docs/models.md's table and each class docstring state them: vgg_bn at the shipped
# width, the published networks as their originals printed them or as rebuilt from their description.
DOCUMENTED_PARAMS = {
    "vgg_bn": 53_362,
    "kaggle_cnn": 887_530,  # as printed by the original kernel's model.summary()
    "keras_cnn": 1_199_882,  # as printed by Keras for mnist_cnn.py
    "tf_conv2d": 1_180_426,
    "flat_mlp": 1_982_986,
}
# What `embed` gives, as each model's docstring states it: (B, this), its last hidden layer.
EMBEDDING_SIZE = {"vgg_bn": 4 * WIDTH, "kaggle_cnn": 256, "tf_conv2d": 512, "keras_cnn": 128, "flat_mlp": 512}


def parameters(name: str, width: int) -> int:
    # eval_shape runs the real constructor on abstract arrays: exact shapes, no random numbers drawn.
    return count_params(nnx.eval_shape(lambda: build_model(name, width=width, rngs=nnx.Rngs(0))))


def test_registry_holds_exactly_the_neural_models_of_the_params_schema():
    assert set(MODELS) == set(NEURAL_MODELS)


@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_parameter_count_is_the_documented_one(name):
    assert parameters(name, SHIPPED_WIDTH) == DOCUMENTED_PARAMS[name]


@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_only_vgg_bn_is_sized_by_width(name):
    if name == "vgg_bn":
        assert parameters(name, WIDTH) < parameters(name, SHIPPED_WIDTH) < parameters(name, 2 * SHIPPED_WIDTH)
    else:  # the published networks have the fixed sizes of their originals
        assert parameters(name, WIDTH) == parameters(name, SHIPPED_WIDTH)


@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_forward_pass_gives_finite_logits(name):
    # The "rbg" generator compiles far faster on CPU than the default threefry: same initialisers.
    model = build_model(name, width=WIDTH, rngs=nnx.Rngs(jax.random.key(0, impl="rbg")))
    model.eval()
    images = jnp.asarray(np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32))
    logits = model(images)
    assert logits.shape == (4, 10) and logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(logits)))
    if name == "tf_conv2d":  # log-sigmoids, so softmax renormalises the ten sigmoids
        assert bool(jnp.all(logits < 0))


@pytest.mark.parametrize("name", NEURAL_MODELS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_logits_are_the_readout_of_the_embedding(name, mode):
    model = build_model(name, width=WIDTH, rngs=init_rngs(0))
    getattr(model, mode)()
    images = jnp.asarray(np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32))
    if mode == "train":  # dropout draws from the model's streams: the same draws for both, from the same seed
        twin = build_model(name, width=WIDTH, rngs=init_rngs(0))
        logits, features = model(images), twin.embed(images)
    else:
        logits, features = model(images), model.embed(images)
    assert features.shape == (4, EMBEDDING_SIZE[name]) and features.dtype == jnp.float32
    np.testing.assert_array_equal(logits, model.readout(features))


@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_the_same_seed_builds_the_same_model_and_another_seed_another(name):
    images = jnp.asarray(np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32))

    def logits(seed):
        model = build_model(name, width=WIDTH, rngs=init_rngs(seed))
        model.eval()
        return np.asarray(model(images))

    np.testing.assert_array_equal(logits(0), logits(0))
    assert not np.array_equal(logits(0), logits(1))


def test_an_unknown_model_is_a_value_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"^'svc' is not a neural model; choose one of vgg_bn, kaggle_cnn, .*flat_mlp$"):
        build_model("svc", width=WIDTH, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("size", [28, 7, 4])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_reshape_max_pool_equals_flax_max_pool(size, padding):
    x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
    expected = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding=padding)
    np.testing.assert_array_equal(max_pool_2x2(x, padding), expected)
