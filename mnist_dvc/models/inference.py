"""Predicting probabilities for many digits: a Flax model as one jit-compiled function, fixed-size
batches, and test-time augmentation (TTA); timed, for the evaluate stage's throughput, and scored
against the digits the label audit flags, for the second training."""

import time
from collections.abc import Callable

import numpy as np

from mnist_dvc import NUM_CLASSES
from mnist_dvc.models.batches import padded_batches

Classifier = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 28, 28) -> float32 probabilities (N, 10)
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (rows down, columns right) of the test-time views
PREDICT_BATCH = 500  # the stages' batch where params name none: one compiled shape, large enough that inference is cheap


def neural_classifier(model) -> Classifier:
    """A Flax model in evaluation mode as one jit-compiled function from images to probabilities."""
    import jax
    from flax import nnx

    from mnist_dvc.models.networks import to_inputs

    graphdef, state = nnx.split(model)

    @jax.jit
    def probabilities(images):
        return jax.nn.softmax(nnx.merge(graphdef, state)(to_inputs(images)), axis=-1)

    return lambda images: np.asarray(probabilities(images))


def shifted(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(N, H, W) images moved by at most one whole pixel down (rows) and right (cols), blank where
    they move away from."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    height, width = images.shape[1:]
    return padded[:, 1 - rows : 1 - rows + height, 1 - cols : 1 - cols + width]


def predict_proba(classifier: Classifier, images: np.ndarray, batch_size: int, tta: bool = False) -> np.ndarray:
    """Probabilities float32 (N, 10) for all images, in padded batches of one size (`padded_batches`).

    With `tta`, the mean of the probabilities of each digit and of it shifted one pixel up, down,
    left and right: five predictions per digit (its effect is measured in docs/choices.md). No
    images give no rows, without calling `classifier`."""
    if len(images) == 0:
        return np.zeros((0, NUM_CLASSES), np.float32)
    if tta:
        return np.mean([predict_proba(classifier, shifted(images, *shift), batch_size) for shift in TTA_SHIFTS], axis=0)
    out = [classifier(batch)[:count] for (batch,), count in padded_batches((images,), batch_size)]
    return np.concatenate(out).astype(np.float32)


def timed_predictions(classifier: Classifier, images: np.ndarray, batch_size: int, tta: bool) -> tuple[np.ndarray, float]:
    """Probabilities for all images and the seconds they took (all five views each with `tta`),
    compile time excluded: one batch is predicted first, through the same padded shape, and thrown away."""
    predict_proba(classifier, images[:batch_size], batch_size)
    start = time.perf_counter()
    probs = predict_proba(classifier, images, batch_size, tta)
    return probs, time.perf_counter() - start
