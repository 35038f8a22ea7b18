"""Why a digit is ambiguous, shown two ways: the training digits it resembles, and the pixels that decide.

- `nearest`: for a query digit and a class (its label, or the digit the model prefers), the training
  digits of that class closest to it in the model's embedding space (its last hidden layer, computed
  with `embed`). A mislabelled "4" whose neighbours are all 9s makes the case at a glance.
- `saliency`: the gradient of (logit of the top class - logit of the runner-up) with respect to the
  input pixels: where ink would tip the model further towards its choice (positive) or towards the
  runner-up (negative).

Both take the model as a plain function of a float batch (B, 28, 28, 1) in [0, 1] (see
`mnist_dvc.models.networks.to_inputs`), so they work for any model and for hand-written test functions.
That function must treat digits independently: a model with BatchNorm or dropout must be in eval
mode (`model.eval()`). Each call compiles the function afresh, so that a model changed between
calls is never served from a stale compilation: pass many digits per call rather than one call
per digit.

For the stages that draw explained galleries (ambiguous, audit), `save_explained_galleries` does
it all: `network_to_explain` loads the model, `load_bank` reads the training digits to search (each
digit of train.npz once), `explain` embeds that bank and the digits to explain in one pass and
finds their neighbours and saliency in one call each, and `gallery_rows` turns the result into the
rows `mnist_dvc.analysis.pictures.save_explained_gallery` draws.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mnist_dvc.analysis.answers import top_two
from mnist_dvc.analysis.pictures import ExplainedRow, NeighbourGroup, save_explained_gallery
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split as load_raw
from mnist_dvc.io.prepared_sets import load_index, load_split
from mnist_dvc.models.batches import padded_batches
from mnist_dvc.models.networks import Network, to_inputs
from mnist_dvc.models.saved import load_network, read_description

ModelFn = Callable[[jax.Array], jax.Array]


def embed(embed_fn: ModelFn, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """`embed_fn` (float (B, 28, 28, 1) -> (B, D)) applied to uint8 images (N, 28, 28), float32 (N, D).

    Runs in batches of min(batch_size, N); the last batch is padded with blank digits to the same
    size, so the whole set compiles once. ValueError when there are no images.
    """
    if len(images) == 0:
        raise ValueError("no images to embed")
    step = jax.jit(lambda batch: embed_fn(to_inputs(batch)))
    parts = [np.asarray(step(batch))[:count] for (batch,), count in padded_batches((images,), min(batch_size, len(images)))]
    return np.concatenate(parts).astype(np.float32)


def nearest(
    query_embeddings: np.ndarray, bank_embeddings: np.ndarray, bank_labels: np.ndarray, classes: np.ndarray, k: int = 5, *,
    exclude: np.ndarray | None = None, chunk: int = 256,
) -> np.ndarray:
    """Positions into the bank of the `k` bank digits nearest (Euclidean) to each query among those
    labelled `classes[q]`, nearest first: int64 (Q, k).

    Where the bank holds fewer than k digits of that class, the row ends with -1 padding. Equal
    computed distances go to the lower position. A query that is itself in the bank finds itself
    first, unless `exclude` (int (Q,), a bank position per query, -1 for none) leaves it out:
    a training digit's neighbours are then other digits. Distances are computed for `chunk`
    queries at a time against one class of the bank, so memory stays at chunk x (bank digits of
    one class) numbers.
    """
    queries = np.asarray(query_embeddings, dtype=np.float64)
    bank = np.asarray(bank_embeddings, dtype=np.float64)
    bank_labels, classes = np.asarray(bank_labels), np.asarray(classes)
    exclude = np.full(len(queries), -1) if exclude is None else np.asarray(exclude)
    if queries.ndim != 2 or bank.ndim != 2 or queries.shape[1] != bank.shape[1]:
        raise ValueError(f"expected embeddings (Q, D) and (M, D), got {queries.shape} and {bank.shape}")
    if bank_labels.shape != (len(bank),) or classes.shape != (len(queries),) or exclude.shape != (len(queries),) or k < 1:
        raise ValueError("need one label per bank digit, one class and one exclusion per query and k >= 1")
    result = np.full((len(queries), k), -1, dtype=np.int64)
    for cls in np.unique(classes):
        candidates = np.flatnonzero(bank_labels == cls)
        candidate_sq = (bank[candidates] ** 2).sum(axis=1)
        asked = np.flatnonzero(classes == cls)
        for start in range(0, len(asked), chunk):
            rows = asked[start : start + chunk]
            # |q - b|^2 = |q|^2 - 2 q.b + |b|^2; |q|^2 is the same along a row, so it does not change the order.
            distance = candidate_sq[None, :] - 2.0 * queries[rows] @ bank[candidates].T
            distance[candidates[None, :] == exclude[rows, None]] = np.inf
            order = np.argsort(distance, axis=1, kind="stable")[:, :k]
            found = np.where(np.isinf(np.take_along_axis(distance, order, axis=1)), -1, candidates[order])
            result[rows, : found.shape[1]] = found
    return result


def _margin(logits: jax.Array) -> jax.Array:
    """Top logit minus the second, per digit; its gradient flows to those two logits only."""
    top_two = jax.lax.top_k(logits, 2)[0]
    return top_two[:, 0] - top_two[:, 1]


def saliency(model_fn: ModelFn, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d(top logit - second logit) / d(pixel) for uint8 images (B, 28, 28): float32 (B, 28, 28);
    those top two classes, int64 (B, 2)), from one compiled pass.

    The gradient is per unit of model input, where a pixel goes from 0 (black) to 1 (white), the
    classes being the model's top two for that digit (the lower class first where the logits are
    equal). All zero for a model whose logits do not depend on the image.
    """

    def margin_and_classes(x):
        logits = model_fn(x)
        return _margin(logits).sum(), jax.lax.top_k(logits, 2)[1]

    # Digits are independent, so the gradient of the batch's sum is each digit's own gradient.
    gradient, classes = jax.jit(jax.grad(margin_and_classes, has_aux=True))(to_inputs(jnp.asarray(images)))
    return np.asarray(gradient[..., 0], dtype=np.float32), np.asarray(classes, dtype=np.int64)


NEIGHBOURS = 5  # training digits shown per class
# Digits per embedding call, chosen for speed: as for the evaluate stage's inference, smaller
# batches stay in the CPU's cache.
EMBED_BATCH = 250
LEGEND = (f"Each row: the digit as written; its saliency on the digit as the model saw it (red: more ink there favours "
          f"the model's top class, blue: its runner-up); its {NEIGHBOURS} nearest training digits (as written, index in the "
          "official training file) of two classes, nearest first, by distance in the model's last hidden layer.")


def neighbour_classes(probs: np.ndarray, given: np.ndarray) -> np.ndarray:
    """int64 (Q, 2): the two classes whose nearest training digits explain each digit: the most
    probable one, then the given label, or, where the two agree, the runner-up (the class the model
    came nearest to choosing instead), so that the second group always shows an alternative."""
    first, _, second, _ = top_two(np.asarray(probs))
    given = np.asarray(given).astype(np.int64)
    return np.stack([first, np.where(given == first, second, given)], axis=1).astype(np.int64)


def network_to_explain(model_folder: Path) -> Network | None:
    """The network saved in `model_folder`, in eval mode; or None, after printing one line saying
    why the explained galleries are skipped: a scikit-learn model (`train.model` svc or knn) has no
    hidden layer to find neighbours in and no gradient, which is a choice of model, not an error."""
    network = load_network(model_folder)
    if network is None:
        print(f"explained galleries skipped: {model_folder} holds a scikit-learn model "
              f"({read_description(model_folder)['model']}), with no hidden layer to find neighbours in and no gradient")
    return network


@dataclass(frozen=True)
class Bank:
    """The training digits neighbours are found among, each once, sorted by `index`."""

    inputs: np.ndarray  # uint8 (M, 28, 28): as the model takes them (prepared by preprocess)
    written: np.ndarray  # uint8 (M, 28, 28): as written, from the official file
    labels: np.ndarray  # (M,)
    index: np.ndarray  # int64 (M,): place in the official training file

    def positions(self, index: np.ndarray) -> np.ndarray:
        """int64: the bank position of each official training `index`, -1 for those not in the bank."""
        index = np.asarray(index, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.index, index), len(self.index) - 1)
        return np.where(self.index[at] == index, at, -1).astype(np.int64)


def load_bank(train_npz: Path, raw_images: Path, raw_labels: Path) -> Bank:
    """The digits of `train_npz` (preprocess's training split) without its cached distorted copies
    (a copy carries its source's index and comes after it: the first digit of each index is the
    original), with each digit as written, read from the official IDX files.

    UserError naming `train_npz` when its digits are not those of the official file (an index past
    its end, or labels that disagree for most digits): the preprocess stage ran on other files. A
    few labels may disagree: those a person corrected (labels/review.csv, `preprocess.review`); the
    bank's labels are train.npz's, the ones the model learnt.
    """
    images, labels = load_split(train_npz)
    index = load_index(train_npz, len(labels))
    index, first = np.unique(index, return_index=True)
    written, official_labels = load_raw(raw_images, raw_labels)
    if len(index) == 0 or index[0] < 0 or index[-1] >= len(written) or (official_labels[index] != labels[first]).mean() > 0.5:
        raise UserError(f"{train_npz}: its digits are not those of {raw_images}; rerun the preprocess stage (dvc repro)")
    return Bank(inputs=images[first], written=written[index], labels=labels[first], index=index)


@dataclass(frozen=True)
class Explanation:
    """Why each of Q digits is ambiguous: the training digits it resembles and the pixels that decide."""

    classes: np.ndarray  # int64 (Q, 2): the two classes whose neighbours were searched (`neighbour_classes`)
    neighbours: np.ndarray  # int64 (Q, 2, k): bank positions, nearest first, -1 padding
    saliency: np.ndarray  # float32 (Q, 28, 28)
    contrast: np.ndarray  # int64 (Q, 2): the network's own top two classes, which the saliency weighs

    def take(self, rows: np.ndarray) -> "Explanation":
        """The explanation of the digits at `rows` only, in that order."""
        return Explanation(self.classes[rows], self.neighbours[rows], self.saliency[rows], self.contrast[rows])


def explain(network: Network, bank: Bank, inputs: np.ndarray, classes: np.ndarray, exclude: np.ndarray | None = None,
            k: int = NEIGHBOURS) -> Explanation:
    """The `k` bank digits nearest to each of `inputs` (uint8 (Q, 28, 28), as the model takes them)
    of each of its two `classes` (int (Q, 2)), and its saliency, for a network in eval mode.

    The bank and the digits are embedded together (one compilation, batches of `EMBED_BATCH`) and
    the saliency of all digits is one call, so one stage pays each compilation once: pass every
    digit it explains in one call. `exclude` as in `nearest` (bank positions, -1 for none).
    """
    features = embed(network.embed, np.concatenate([bank.inputs, inputs]), EMBED_BATCH)
    queries, classes = features[len(bank.inputs):], np.asarray(classes)
    exclude = np.full(len(inputs), -1) if exclude is None else np.asarray(exclude)
    found = nearest(np.concatenate([queries, queries]), features[: len(bank.inputs)], bank.labels,
                    np.concatenate([classes[:, 0], classes[:, 1]]), k, exclude=np.concatenate([exclude, exclude]))
    maps, contrast = saliency(network, inputs)
    return Explanation(classes.astype(np.int64), np.stack([found[: len(inputs)], found[len(inputs):]], axis=1), maps, contrast)


def gallery_rows(explanation: Explanation, bank: Bank, written: np.ndarray, inputs: np.ndarray, captions: Sequence[str],
                 given: np.ndarray, chosen: str = "predicted") -> list[ExplainedRow]:
    """The rows of an explained gallery for Q digits: each digit as `written` with its caption (red
    where the first class, `chosen` by the model, is not the `given` label), its saliency over its
    model input, and its neighbours as written, captioned with their index in the official file."""
    rows = []
    for q, (classes, neighbours) in enumerate(zip(explanation.classes, explanation.neighbours)):
        second = "given" if classes[1] == given[q] else f"runner-up: {chosen} = given"
        groups = [NeighbourGroup(f"nearest {cls}s ({role})", [bank.written[at] for at in found if at >= 0],
                                 [f"#{bank.index[at]}" for at in found if at >= 0])
                  for cls, role, found in zip(classes, (chosen, second), neighbours)]
        top, runner_up = explanation.contrast[q]
        rows.append(ExplainedRow(written[q], captions[q], bool(classes[0] != given[q]), inputs[q], explanation.saliency[q],
                                 f"red {top}, blue {runner_up}", groups))
    return rows


@dataclass(frozen=True)
class DigitsToExplain:
    """Q digits to explain, in the order `explain` takes them (each once, whatever the galleries
    that show it)."""

    inputs: np.ndarray  # uint8 (Q, 28, 28): as the model takes them
    written: np.ndarray  # uint8 (Q, 28, 28): as written
    probs: np.ndarray  # (Q, 10): the probabilities that chose them
    given: np.ndarray  # (Q,): their labels
    training_index: np.ndarray | None = None  # (Q,): the official index of each training digit (-1 for the others), never its own neighbour


@dataclass(frozen=True)
class Gallery:
    """One explained gallery: which of the explained digits it shows (`at`, positions into them, in
    order), their captions, its file and its title (the legend is appended)."""

    at: np.ndarray
    captions: Sequence[str]
    path: Path
    title: str


def together(parts: Sequence[tuple[DigitsToExplain, Gallery]]) -> tuple[DigitsToExplain, list[Gallery]]:
    """Galleries that each show digits of their own (`at` into their own part) as one set of digits,
    in the order given, to explain in one call, and the galleries with `at` moved to their place in it."""
    starts = np.cumsum([0, *(len(digits.inputs) for digits, _ in parts)])
    own = [digits.training_index if digits.training_index is not None else np.full(len(digits.inputs), -1) for digits, _ in parts]
    digits = DigitsToExplain(*(np.concatenate([getattr(part, field) for part, _ in parts]) for field in ("inputs", "written", "probs", "given")),
                             training_index=None if all(part.training_index is None for part, _ in parts) else np.concatenate(own))
    return digits, [replace(gallery, at=gallery.at + start) for (_, gallery), start in zip(parts, starts)]


def save_explained_galleries(model_folder: Path, bank_files: Sequence[Path], digits: DigitsToExplain,
                             galleries: Sequence[Gallery], chosen: str = "predicted", what: str = "digits") -> bool:
    """Every gallery of `galleries`, explained by the network in `model_folder` against the training
    digits of `bank_files` (train.npz and the official images and labels files, as `load_bank`
    takes them); or nothing, saying why, for a scikit-learn model (`network_to_explain`).

    All `digits` are explained in one `explain` call, so the bank is embedded once and each function
    compiles once; each of their first classes is the one `chosen` by the model (see `gallery_rows`).
    Ends with one printed line: how many of `what` were explained against how many training digits.
    Returns whether it drew the galleries (False for a scikit-learn model).
    """
    started = time.perf_counter()
    network = network_to_explain(model_folder)
    if network is None:
        return False
    bank = load_bank(*bank_files)
    exclude = None if digits.training_index is None else bank.positions(digits.training_index)
    explanation = explain(network, bank, digits.inputs, neighbour_classes(digits.probs, digits.given), exclude)
    for gallery in galleries:
        rows = gallery_rows(explanation.take(gallery.at), bank, digits.written[gallery.at], digits.inputs[gallery.at],
                            gallery.captions, digits.given[gallery.at], chosen)
        save_explained_gallery(rows, gallery.path, f"{gallery.title}, explained. {LEGEND}")
    print(f"explained {len(digits.inputs)} {what} against {len(bank.index):,} training digits in {time.perf_counter() - started:.1f} s")
    return True
