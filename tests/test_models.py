"""The neural model zoo: every model builds, maps a batch of digits to 10 finite logits, has the
parameter count of the network it reproduces, and computes its logits from its embedding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from stages.lib.models import MODELS, build_model, count_params, init_rngs, max_pool_2x2
from stages.lib.params import NEURAL_MODELS

WIDTH = 8

# vgg_bn at width 8, layer by layer: 3x3 convolutions without bias (1->8, 8->16, 16->32), a
# BatchNorm scale and shift per convolution channel, dense 32->10 with bias.
VGG_BN_WIDTH_8 = 9 * (1 * 8 + 8 * 16 + 16 * 32) + 2 * (8 + 16 + 32) + (32 * 10 + 10)

EXPECTED_PARAMS = {
    "vgg_bn": VGG_BN_WIDTH_8,
    "kaggle_cnn": 887_530,  # as printed by the original kernel's model.summary()
    "keras_cnn": 1_199_882,  # as printed by Keras for mnist_cnn.py
    "tf_conv2d": 320 + 18_496 + 73_856 + 295_168 + (1024 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10),
    "flat_mlp": (784 * 512 + 512) + 6 * (512 * 512 + 512) + (512 * 10 + 10),
}


def test_registry_holds_exactly_the_neural_models_of_the_params_schema():
    assert set(MODELS) == set(NEURAL_MODELS)


@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_parameter_count(name):
    # eval_shape runs the real constructor on abstract arrays: exact shapes, no random numbers drawn.
    model = nnx.eval_shape(lambda: build_model(name, width=WIDTH, rngs=nnx.Rngs(0)))
    assert count_params(model) == EXPECTED_PARAMS[name]


def test_parameter_counts_of_the_published_networks_by_hand():
    assert EXPECTED_PARAMS["tf_conv2d"] == 1_180_426
    assert EXPECTED_PARAMS["flat_mlp"] == 1_982_986
    assert VGG_BN_WIDTH_8 == 6_274


def test_vgg_bn_grows_with_width():
    def params(width):
        return count_params(nnx.eval_shape(lambda: build_model("vgg_bn", width=width, rngs=nnx.Rngs(0))))

    w = 32  # the formula of the VggBN docstring
    assert params(w) == 9 * (w + 10 * w * w) + 14 * w + 40 * w + 10


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


# Each model's final layer, and what it does to that layer's output (tf_conv2d: log-sigmoids).
FINAL_LAYER = {"vgg_bn": (lambda m: m.head, lambda z: z), "tf_conv2d": (lambda m: m.out, jax.nn.log_sigmoid)}


@pytest.mark.parametrize("name", NEURAL_MODELS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_logits_are_the_final_layer_applied_to_the_embedding(name, mode):
    model = build_model(name, width=WIDTH, rngs=init_rngs(0))
    getattr(model, mode)()
    images = jnp.asarray(np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32))
    final, squash = FINAL_LAYER.get(name, (lambda m: m.out, lambda z: z))
    layer = final(model)
    if mode == "train":  # dropout draws from the model's streams: the same draws for both, from the same seed
        twin = build_model(name, width=WIDTH, rngs=init_rngs(0))
        logits, features = model(images), twin.embed(images)
    else:
        logits, features = model(images), model.embed(images)
    assert isinstance(layer, nnx.Linear) and layer.out_features == 10
    assert features.shape == (4, layer.in_features)  # the last hidden layer: what the final one reads
    np.testing.assert_array_equal(logits, squash(layer(features)))
    np.testing.assert_array_equal(logits, model.readout(features))


def test_an_unknown_model_is_a_value_error_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"^'svc' is not a neural model; choose one of vgg_bn, kaggle_cnn, .*flat_mlp$"):
        build_model("svc", width=WIDTH, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("size", [28, 7, 4])
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_reshape_max_pool_equals_flax_max_pool(size, padding):
    x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
    expected = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding=padding)
    np.testing.assert_array_equal(max_pool_2x2(x, padding), expected)
