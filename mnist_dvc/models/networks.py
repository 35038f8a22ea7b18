"""The neural model zoo: our own VGG-style network and four published MNIST networks, in Flax NNX.

Every model takes float32 images (B, 28, 28, 1) scaled to [0, 1] and returns logits (B, 10) whose
softmax is the model's class probability, so training, evaluation and the ambiguity analysis treat
all models alike. Every model is a `Network`: `embed` gives its last hidden layer (what its final
layer reads), `readout` that final layer, and calling the model is the one composition of the two.
Dropout and BatchNorm start in training mode; the caller switches them with
`model.eval()` / `model.train()` (or `nnx.view`).

The published networks are rebuilt from their descriptions. Where the original was Keras, we use
Keras's defaults of its time wherever the original did not say otherwise: Glorot-uniform kernels,
zero biases, "valid" pooling that drops an odd last row. Each class docstring lists the original,
the accuracy it reported, and every detail we had to choose. Their parameter counts are checked
in tests/unit/models/test_networks.py.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

_KERAS_KERNEL_INIT = nnx.initializers.glorot_uniform()


def _keras_conv(in_channels: int, out_channels: int, size: int, padding: str, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(
        in_channels, out_channels, (size, size), padding=padding, kernel_init=_KERAS_KERNEL_INIT, rngs=rngs
    )


def _keras_dense(in_features: int, out_features: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(in_features, out_features, kernel_init=_KERAS_KERNEL_INIT, rngs=rngs)


def max_pool_2x2(x: jax.Array, padding: str = "VALID") -> jax.Array:
    """2x2 max-pool with stride 2; "VALID" drops an odd last row/column, "SAME" pads it.

    Written as a reshape and a max rather than `nnx.max_pool`: the result is the same, but the
    gradient is a cheap mask, where max_pool's select-and-scatter gradient is slow on XLA's CPU
    backend, a sizeable share of a vgg_bn training step there.
    """
    _, h, w, _ = x.shape
    if padding == "SAME":
        x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
    else:
        x = x[:, : h - h % 2, : w - w % 2]
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _flatten(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


class Network(nnx.Module):
    """A model in two parts: `embed(x)` (float32 (B, 28, 28, 1) -> its last hidden layer (B, D)) and
    `readout(features)` (its final layer: (B, D) -> logits (B, 10)), which every subclass defines.

    The logits are `readout(embed(x))`, written here once, so the embedding that the explanations
    find neighbours in (`mnist_dvc.analysis.explain`) is by construction the one the logits are computed
    from. The split adds no parameter and changes no computation: the weights, their tree and the
    logits are those of the network written as one function.
    """

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.readout(self.embed(x))


class ConvBnRelu(nnx.Module):
    """3x3 convolution (same padding, no bias: BatchNorm's shift replaces it), BatchNorm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(in_channels, out_channels, (3, 3), padding="SAME", use_bias=False, rngs=rngs)
        self.norm = nnx.BatchNorm(out_channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return nnx.relu(self.norm(self.conv(x)))


class VggBN(Network):
    """Our own default: a small VGG-style network with BatchNorm, sized by one number, `width`.

    Three `ConvBnRelu` layers with width, 2*width and 4*width channels; the first two are each
    followed by a 2x2 max-pool (28 -> 14 -> 7), the third works at 7x7 and is followed by a global
    max-pool over space (the strongest response of each feature anywhere in the digit) and one
    dense layer to 10 logits. No dropout: BatchNorm and the training stage's augmentation
    regularise it. Pixels go in unnormalised, so the zero padding of every "SAME" convolution
    matches the black background; the first BatchNorm rescales whatever the first convolution sees.

    Why this shape: on a CPU, XLA's convolutions are the whole cost, and a second convolution per
    block cost much more time for little accuracy, while one convolution per block keeps
    training on a few CPU cores practical (its measured speed: docs/models.md).

    Parameters: 9 * (w + 2w^2 + 8w^2) convolution weights, 2 * 7w BatchNorm scales and shifts,
    and 4w * 10 + 10 in the head.
    """

    def __init__(self, *, width: int, rngs: nnx.Rngs):
        channels = (width, 2 * width, 4 * width)
        self.layers = nnx.List(
            ConvBnRelu(c_in, c_out, rngs=rngs) for c_in, c_out in zip((1,) + channels[:-1], channels)
        )
        self.head = nnx.Linear(channels[-1], 10, rngs=rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """The global max-pool of the last block: (B, 4 * width)."""
        x = max_pool_2x2(self.layers[0](x))
        x = max_pool_2x2(self.layers[1](x))
        return jnp.max(self.layers[2](x), axis=(1, 2))

    def readout(self, features: jax.Array) -> jax.Array:
        return self.head(features)


class KaggleCNN(Network):
    """Yassine Ghouzam's Kaggle kernel "Introduction to CNN Keras - 0.997 (top 6%)" (2017).

    Reported accuracy: 99.5% as the project brief quotes it; the kernel itself scored 99.671% on the
    Kaggle Digit Recognizer leaderboard (28,000 MNIST digits, not the official 10,000 test set), trained 30 epochs with RMSprop, learning-rate reduction on
    plateau and random rotation/zoom/shift augmentation.

    Architecture as published: conv 5x5x32, conv 5x5x32 (same padding, ReLU), max-pool 2, dropout
    0.25, conv 3x3x64, conv 3x3x64 (same, ReLU), max-pool 2 stride 2, dropout 0.25, flatten
    (7*7*64), dense 256 ReLU, dropout 0.5, dense 10 (softmax in the original, logits here): 887,530
    parameters. Chosen (Keras defaults of the time): Glorot-uniform kernels, zero biases, "valid"
    pooling; input pixels divided by 255 as in the kernel, i.e. our [0, 1] input unchanged.
    """

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = _keras_conv(1, 32, 5, "SAME", rngs)
        self.conv2 = _keras_conv(32, 32, 5, "SAME", rngs)
        self.drop1 = nnx.Dropout(0.25, rngs=rngs)
        self.conv3 = _keras_conv(32, 64, 3, "SAME", rngs)
        self.conv4 = _keras_conv(64, 64, 3, "SAME", rngs)
        self.drop2 = nnx.Dropout(0.25, rngs=rngs)
        self.dense = _keras_dense(7 * 7 * 64, 256, rngs)
        self.drop3 = nnx.Dropout(0.5, rngs=rngs)
        self.out = _keras_dense(256, 10, rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """The dense 256 ReLU layer, after its dropout (none in eval mode): (B, 256)."""
        x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
        x = self.drop1(max_pool_2x2(x))
        x = nnx.relu(self.conv4(nnx.relu(self.conv3(x))))
        x = self.drop2(max_pool_2x2(x))
        return self.drop3(nnx.relu(self.dense(_flatten(x))))

    def readout(self, features: jax.Array) -> jax.Array:
        return self.out(features)


class TfConv2d(Network):
    """A TensorFlow conv2d MNIST network ending in tanh-squashed features and ten sigmoid outputs.

    Original, as described to us: four convolution + max-pool pairs, flatten, dense 512 ReLU, dense
    512 whose outputs are squashed to [-1, 1] by tanh, then a 10-unit dense layer with a sigmoid;
    the predicted digit is the argmax of the ten sigmoids. Reported: 99.32% after 100 epochs. Its
    layer sizes were not recorded with that description.

    Chosen: 3x3 convolutions with 32, 64, 128 and 256 channels, same padding and ReLU; 2x2 max-pools
    with same padding so the maps go 28 -> 14 -> 7 -> 4 -> 2 (2*2*256 = 1024 features); Glorot-
    uniform kernels and zero biases (the tf.layers defaults). 1,180,426 parameters.

    Output: the ten sigmoids are independent, so they are not a probability. We return
    `log_sigmoid(z)` as the logits: its softmax is sigmoid(z) / sum(sigmoid(z)), the sigmoids
    renormalised to sum to 1, with the same argmax as the original. Training it with softmax
    cross-entropy on these logits (as every model here is trained) pushes the true digit's sigmoid
    up relative to the others, not each sigmoid to 0 or 1 as a per-unit loss would.
    """

    def __init__(self, *, rngs: nnx.Rngs):
        channels = (1, 32, 64, 128, 256)
        self.convs = nnx.List(
            [_keras_conv(cin, cout, 3, "SAME", rngs) for cin, cout in zip(channels, channels[1:])]
        )
        self.dense1 = _keras_dense(2 * 2 * 256, 512, rngs)
        self.dense2 = _keras_dense(512, 512, rngs)
        self.out = _keras_dense(512, 10, rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """The tanh-squashed dense 512 layer: (B, 512)."""
        for conv in self.convs:
            x = max_pool_2x2(nnx.relu(conv(x)), padding="SAME")
        return jnp.tanh(self.dense2(nnx.relu(self.dense1(_flatten(x)))))

    def readout(self, features: jax.Array) -> jax.Array:
        return jax.nn.log_sigmoid(self.out(features))


class KerasCNN(Network):
    """The Keras example mnist_cnn.py (keras/examples, 2015-2019).

    Reported accuracy: "Gets to 99.25% test accuracy after 12 epochs" (Adadelta, batch 128) on the
    official 10,000 test images.

    Architecture as published: conv 3x3x32 ReLU, conv 3x3x64 ReLU (both "valid": 28 -> 26 -> 24),
    max-pool 2 (-> 12), dropout 0.25, flatten (12*12*64 = 9216), dense 128 ReLU, dropout 0.5,
    dense 10 (softmax in the original, logits here): 1,199,882 parameters. Chosen (the example
    relies on Keras defaults): Glorot-uniform kernels, zero biases; pixels divided by 255, i.e.
    our [0, 1] input unchanged.
    """

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = _keras_conv(1, 32, 3, "VALID", rngs)
        self.conv2 = _keras_conv(32, 64, 3, "VALID", rngs)
        self.drop1 = nnx.Dropout(0.25, rngs=rngs)
        self.dense = _keras_dense(12 * 12 * 64, 128, rngs)
        self.drop2 = nnx.Dropout(0.5, rngs=rngs)
        self.out = _keras_dense(128, 10, rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """The dense 128 ReLU layer, after its dropout (none in eval mode): (B, 128)."""
        x = nnx.relu(self.conv2(nnx.relu(self.conv1(x))))
        x = self.drop1(max_pool_2x2(x))
        return self.drop2(nnx.relu(self.dense(_flatten(x))))

    def readout(self, features: jax.Array) -> jax.Array:
        return self.out(features)


class FlatMLP(Network):
    """A plain multilayer perceptron: 8 dense layers on the 784 flattened pixels, no convolutions.

    Original, as described to us: eight dense layers on the flattened image ending in 10 outputs,
    reported at 97.46% after 100 epochs; its hidden sizes and activations were not recorded.

    Chosen, after the Keras example mnist_mlp.py (dense 512 ReLU + dropout 0.2, twice; "98.40% test
    accuracy after 20 epochs"), made eight layers deep: 7 hidden layers of 512 units, each ReLU then
    dropout 0.2, and a dense 10 output (logits). Glorot-uniform kernels, zero biases (Keras
    defaults); [0, 1] pixels unchanged. 784*512+512 + 6*(512*512+512) + 512*10+10 = 1,982,986
    parameters.
    """

    def __init__(self, *, rngs: nnx.Rngs):
        sizes = (784,) + (512,) * 7
        self.hidden = nnx.List([_keras_dense(n_in, n_out, rngs) for n_in, n_out in zip(sizes, sizes[1:])])
        self.drops = nnx.List([nnx.Dropout(0.2, rngs=rngs) for _ in self.hidden])
        self.out = _keras_dense(512, 10, rngs)

    def embed(self, x: jax.Array) -> jax.Array:
        """The seventh hidden layer, after its dropout (none in eval mode): (B, 512)."""
        x = _flatten(x)
        for dense, drop in zip(self.hidden, self.drops):
            x = drop(nnx.relu(dense(x)))
        return x

    def readout(self, features: jax.Array) -> jax.Array:
        return self.out(features)


# name -> builder(width, rngs); only vgg_bn uses `width`, the published networks have fixed sizes.
MODELS: dict[str, Callable[[int, nnx.Rngs], Network]] = {
    "vgg_bn": lambda width, rngs: VggBN(width=width, rngs=rngs),
    "kaggle_cnn": lambda width, rngs: KaggleCNN(rngs=rngs),
    "tf_conv2d": lambda width, rngs: TfConv2d(rngs=rngs),
    "keras_cnn": lambda width, rngs: KerasCNN(rngs=rngs),
    "flat_mlp": lambda width, rngs: FlatMLP(rngs=rngs),
}


def to_inputs(images: jax.Array) -> jax.Array:
    """uint8 (B, 28, 28) to the float (B, 28, 28, 1) in [0, 1] that every model takes."""
    return (images.astype(jnp.float32) / 255.0)[..., None]


def init_rngs(seed: int) -> nnx.Rngs:
    """Random streams for initialisation and dropout, on the "rbg" generator: the default
    threefry compiles once per weight shape on the CPU, which made building a model slow."""
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def build_model(name: str, *, width: int, rngs: nnx.Rngs) -> Network:
    """A freshly initialised model; `width` only matters for vgg_bn."""
    if name not in MODELS:
        raise ValueError(f"{name!r} is not a neural model; choose one of {', '.join(MODELS)}")
    return MODELS[name](width, rngs)


def count_params(model: nnx.Module) -> int:
    """Number of trainable numbers (nnx.Param leaves); BatchNorm's running statistics do not count."""
    return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
