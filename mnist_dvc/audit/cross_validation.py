"""Cross-validation over the training digits, for out-of-fold predictions.

Confident learning needs, for every training digit, probabilities from a model that never saw it:
train K models, each on all folds but one, and let each predict its held-out fold. Folds are
stratified (`fold_of`: every fold has the same mix of digits, within one) and fixed by a seed, so
the same labels and seed always give the same folds. Fold k's model trains on every fold but k,
minus a small stratified validation slice of those folds (it watches training, as the main model's
validation set does), and predicts fold k (`fold_split`). Put together, the folds give every digit a
probability from a model that never trained on it (`out_of_fold`; `fold_fits` and `combine_folds`
for the folds' files).

The digits are those training uses (`audited_digits`): the training file's (its first
`preprocess.train_subset`), with the labels the preprocess stage wrote to train_labels.npz, which
carry a person's verdicts when `preprocess.review` is on; a digit judged ambiguous is left out, so
the audit never flags again a label a person settled.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from mnist_dvc.digits.split import split_validation
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split
from mnist_dvc.io.stage_outputs import read_npz

VAL_DIGITS = 1000  # the validation slice of a fold model's training folds, at most...
VAL_SHARE = 0.1  # ...this share of them, so that small subsets still leave most digits to train on
# What a fold writes: the official `positions` of its held-out digits, their given `labels`, their
# `probs` (n, 10), and its probabilities of every test digit, `test_probs`.
FOLD_ARRAYS = ("positions", "labels", "probs", "test_probs")


def fold_of(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold, 0 to folds - 1, of every digit: int64 (N,), stratified by label, shuffled by `seed`.

    Raises ValueError when folds < 2 or folds exceeds the count of the rarest digit present (a fold
    would then miss that digit).
    """
    labels = np.asarray(labels)
    if folds < 2:
        raise ValueError(f"need at least 2 folds, got {folds}")
    rarest = np.unique(labels, return_counts=True)[1].min() if len(labels) else 0
    if folds > rarest:
        raise ValueError(f"{folds} folds need at least {folds} digits of every class; the rarest has {rarest}")
    fold = np.full(len(labels), -1, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros((len(labels), 1)), labels)):
        fold[held_out] = k
    return fold


@dataclass(frozen=True)
class AuditedDigits:
    """The training digits the audit covers, in the order of the official file."""

    images: np.ndarray  # uint8 (N, 28, 28): as written
    labels: np.ndarray  # (N,): as training uses them, after the verdicts
    index: np.ndarray  # int64 (N,), increasing: place in the official training file
    official: np.ndarray  # (N,): the official file's labels; where they differ from `labels`, a person corrected them


def audited_digits(images_path: Path, labels_path: Path, labels_npz: Path, subset: int) -> AuditedDigits:
    """The training digits the audit covers: those of the official files (read and checked by
    `mnist_dvc.io.idx.read_split`; the whole file, or its first `subset` when that is not 0, as the
    preprocess stage takes them) with the labels of `labels_npz` (the preprocess stage's
    train_labels.npz), without those it marks -1 (judged ambiguous). `UserError` naming
    `labels_npz` when it was made for another subset."""
    images, official = read_split(images_path, labels_path)
    if subset:
        images, official = images[:subset], official[:subset]
    arrays = read_npz(labels_npz, ("index", "labels"), "preprocess")
    if not np.array_equal(arrays["index"], np.arange(len(official))) or arrays["labels"].shape != official.shape:
        raise UserError(f"{labels_npz}: made for other training digits than the first {len(official)} of {images_path}; "
                        "rerun the preprocess stage (dvc repro)")
    index = np.flatnonzero(arrays["labels"] >= 0)
    return AuditedDigits(images[index], arrays["labels"][index].astype(official.dtype), index.astype(np.int64), official[index])


def fold_split(labels: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted positions into `labels`: (train, val, held_out) of fold `fold` of `folds`.

    held_out is fold `fold` of `fold_of(labels, folds, seed)`; val is a slice of
    the other folds, stratified by label and seeded by `seed`, of min(VAL_DIGITS, VAL_SHARE of them)
    digits (at least one of each label present); train is the rest. The three never overlap and
    together hold every position. Raises ValueError as `fold_of` does (folds < 2, or more folds than
    digits of the rarest label), or when `fold` is not in 0..folds-1.
    """
    labels = np.asarray(labels)
    assignment = fold_of(labels, folds, seed)
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not one of 0..{folds - 1}")
    held_out = np.flatnonzero(assignment == fold)
    rest = np.flatnonzero(assignment != fold)
    classes = len(np.unique(labels[rest]))
    val_size = max(classes, min(VAL_DIGITS, int(VAL_SHARE * len(rest))))
    train_at, val_at = split_validation(labels[rest], val_size, seed)
    return rest[train_at], rest[val_at], held_out


def out_of_fold(n: int, parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """float32 (n, classes): each digit's probabilities from the one part that held it out.

    `parts` holds one (positions, probs) pair per fold. Raises ValueError naming the first fold
    (by its place in `parts`) whose positions are out of range or already covered, or the first
    position no fold covers: the folds do not partition the n digits (made from other data or
    settings).
    """
    if not parts:
        raise ValueError("no folds")
    probs = np.full((n, parts[0][1].shape[1]), np.nan, dtype=np.float32)
    covered = np.zeros(n, dtype=bool)
    for number, (positions, fold_probs) in enumerate(parts):
        positions = np.asarray(positions)
        if fold_probs.shape != (len(positions), probs.shape[1]):
            raise ValueError(f"fold {number}: {fold_probs.shape} probabilities for {len(positions)} digits")
        if len(positions) and (positions.min() < 0 or positions.max() >= n):
            raise ValueError(f"fold {number}: positions outside 0..{n - 1}")
        if covered[positions].any() or len(np.unique(positions)) < len(positions):
            raise ValueError(f"fold {number}: holds out digits another fold (or itself) already held out")
        covered[positions] = True
        probs[positions] = fold_probs
    if not covered.all():
        raise ValueError(f"no fold held out digit {int(np.argmin(covered))} (of {n})")
    return probs


def places(index: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """int64: where each official `positions` stands in the increasing `index`, -1 where it is not there."""
    index, positions = np.asarray(index), np.asarray(positions)
    if len(index) == 0:
        return np.full(len(positions), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(index, positions), len(index) - 1)
    return np.where(index[at] == positions, at, -1).astype(np.int64)


def fold_fits(fold: dict[str, np.ndarray], index: np.ndarray, labels: np.ndarray, n_test: int) -> bool:
    """Whether one fold's `FOLD_ARRAYS` can describe these training digits (official `index`,
    increasing, and their `labels`) and `n_test` test digits: shapes that agree, positions among the
    digits, the same given labels."""
    at = places(index, fold["positions"])
    return (fold["test_probs"].shape == (n_test, 10) and fold["probs"].shape == (len(at), 10)
            and bool((at >= 0).all()) and np.array_equal(fold["labels"], np.asarray(labels)[at]))


def combine_folds(index: np.ndarray, folds: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold probabilities of the training digits at official `index` (increasing), in that
    order (`out_of_fold`), the folds' mean test probabilities) from every fold's `FOLD_ARRAYS`;
    ValueError as `out_of_fold` (a position not in `index` counts as outside)."""
    probs = out_of_fold(len(index), [(places(index, fold["positions"]), fold["probs"]) for fold in folds])
    return probs, np.mean([fold["test_probs"] for fold in folds], axis=0)
