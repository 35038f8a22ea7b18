"""Predicting probabilities for many digits: a Flax model as one jit-compiled function, fixed-size
batches, and test-time augmentation (TTA)."""

from collections.abc import Callable

import numpy as np

from stages.lib.batches import padded_batches

Classifier = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 28, 28) -> float32 probabilities (N, 10)
TTA_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (rows down, columns right) of the test-time views


def neural_classifier(model) -> Classifier:
    """A Flax model in evaluation mode as one jit-compiled function from images to probabilities."""
    import jax
    from flax import nnx

    from stages.lib.models import to_inputs

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
    left and right: five predictions per digit (its effect is measured in README, Choices)."""
    if tta:
        return np.mean([predict_proba(classifier, shifted(images, *shift), batch_size) for shift in TTA_SHIFTS], axis=0)
    out = [classifier(batch)[:count] for (batch,), count in padded_batches((images,), batch_size)]
    return np.concatenate(out).astype(np.float32)
