"""Why a digit is ambiguous, shown two ways: the training digits it resembles, and the pixels that decide.

- `nearest`: for a query digit and a class (its label, or the digit the model prefers), the training
  digits of that class closest to it in the model's embedding space (its last hidden layer, computed
  with `embed`). A mislabelled "4" whose neighbours are all 9s makes the case at a glance.
- `saliency`: the gradient of (logit of the top class - logit of the runner-up) with respect to the
  input pixels: where ink would tip the model further towards its choice (positive) or towards the
  runner-up (negative).

Both take the model as a plain function of a float batch (B, 28, 28, 1) in [0, 1] (see
`stages.lib.models.to_inputs`), so they work for any model and for hand-written test functions.
That function must treat digits independently: a model with BatchNorm or dropout must be in eval
mode (`model.eval()`). Each call compiles the function afresh (a few seconds for a CNN on a CPU),
so that a model changed between calls is never served from a stale compilation: pass many digits
per call rather than one call per digit.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from stages.lib.models import to_inputs

ModelFn = Callable[[jax.Array], jax.Array]


def embed(embed_fn: ModelFn, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """`embed_fn` (float (B, 28, 28, 1) -> (B, D)) applied to uint8 images (N, 28, 28), float32 (N, D).

    Runs in batches of min(batch_size, N); the last batch is padded with blank digits to the same
    size, so the whole set compiles once. ValueError when there are no images.
    """
    if len(images) == 0:
        raise ValueError("no images to embed")
    batch_size = min(batch_size, len(images))
    step = jax.jit(lambda batch: embed_fn(to_inputs(batch)))
    parts = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        padded = np.pad(batch, ((0, batch_size - len(batch)), (0, 0), (0, 0)))
        parts.append(np.asarray(step(padded))[: len(batch)])
    return np.concatenate(parts).astype(np.float32)


def nearest(
    query_embeddings: np.ndarray, bank_embeddings: np.ndarray, bank_labels: np.ndarray, classes: np.ndarray, k: int = 5, *, chunk: int = 256
) -> np.ndarray:
    """Positions into the bank of the `k` bank digits nearest (Euclidean) to each query among those
    labelled `classes[q]`, nearest first: int64 (Q, k).

    Where the bank holds fewer than k digits of that class, the row ends with -1 padding. Equal
    computed distances go to the lower position. A query that is itself in the bank finds itself first. Distances are computed for `chunk` queries at a time against
    one class of the bank, so memory stays at chunk x (bank digits of one class) numbers.
    """
    queries = np.asarray(query_embeddings, dtype=np.float64)
    bank = np.asarray(bank_embeddings, dtype=np.float64)
    bank_labels, classes = np.asarray(bank_labels), np.asarray(classes)
    if queries.ndim != 2 or bank.ndim != 2 or queries.shape[1] != bank.shape[1]:
        raise ValueError(f"expected embeddings (Q, D) and (M, D), got {queries.shape} and {bank.shape}")
    if bank_labels.shape != (len(bank),) or classes.shape != (len(queries),) or k < 1:
        raise ValueError("need one label per bank digit, one class per query and k >= 1")
    result = np.full((len(queries), k), -1, dtype=np.int64)
    for cls in np.unique(classes):
        candidates = np.flatnonzero(bank_labels == cls)
        candidate_sq = (bank[candidates] ** 2).sum(axis=1)
        asked = np.flatnonzero(classes == cls)
        for start in range(0, len(asked), chunk):
            rows = asked[start : start + chunk]
            # |q - b|^2 = |q|^2 - 2 q.b + |b|^2; |q|^2 is the same along a row, so it does not change the order.
            distance = candidate_sq[None, :] - 2.0 * queries[rows] @ bank[candidates].T
            found = candidates[np.argsort(distance, axis=1, kind="stable")[:, :k]]
            result[rows, : found.shape[1]] = found
    return result


def _margin(logits: jax.Array) -> jax.Array:
    """Top logit minus the second, per digit; its gradient flows to those two logits only."""
    top_two = jax.lax.top_k(logits, 2)[0]
    return top_two[:, 0] - top_two[:, 1]


def saliency(model_fn: ModelFn, images: np.ndarray) -> np.ndarray:
    """d(top logit - second logit) / d(pixel) for uint8 images (B, 28, 28): float32 (B, 28, 28).

    The gradient is per unit of model input, where a pixel goes from 0 (black) to 1 (white), the
    classes being the model's top two for that digit. All zero for a model whose logits do not
    depend on the image.
    """
    # Digits are independent, so the gradient of the batch's sum is each digit's own gradient.
    gradient = jax.jit(jax.grad(lambda x: _margin(model_fn(x)).sum()))
    return np.asarray(gradient(to_inputs(jnp.asarray(images)))[..., 0], dtype=np.float32)
