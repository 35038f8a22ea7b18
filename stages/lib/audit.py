"""The label audit's pieces between the cross-validation folds and the ranked label issues.

Fold k's model trains on every fold but k, minus a small stratified validation slice of those folds
(it watches training, as the main model's validation set does), and predicts fold k, which it
never saw (`fold_split`). Put together, the folds give every digit a probability from a model that
never trained on it (`out_of_fold`; `fold_fits` and `combine_folds` for the folds' files), which is
what confident learning (`stages.lib.label_issues`) needs. `issue_table` turns its ranking into a
table of digits named by their place in the official MNIST file.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib.folds import fold_of
from stages.lib.idx import load_split
from stages.lib.split import split_validation

AUDIT_COLUMNS = ["split", "index", "given_label", "suggested_label", "label_quality", "rank"]
VAL_DIGITS = 1000  # the validation slice of a fold model's training folds, at most...
VAL_SHARE = 0.1  # ...this share of them, so that small subsets still leave most digits to train on
# What a fold writes: the official `positions` of its held-out digits, their given `labels`, their
# `probs` (n, 10), and its probabilities of every test digit, `test_probs`.
FOLD_ARRAYS = ("positions", "labels", "probs", "test_probs")


def training_digits(images_path: Path, labels_path: Path, subset: int) -> tuple[np.ndarray, np.ndarray]:
    """The raw training digits (uint8 (N, 28, 28)) and labels the audit covers, read and checked by
    `stages.lib.idx.load_split`: the whole file, or its first `subset` when that is not 0, as the
    preprocess stage takes them. A digit's position is therefore its index in the official file."""
    images, labels = load_split(images_path, labels_path)
    return (images[:subset], labels[:subset]) if subset else (images, labels)


def fold_split(labels: np.ndarray, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted positions into `labels`: (train, val, held_out) of fold `fold` of `folds`.

    held_out is fold `fold` of `stages.lib.folds.fold_of(labels, folds, seed)`; val is a slice of
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


def fold_fits(fold: dict[str, np.ndarray], labels: np.ndarray, n_test: int) -> bool:
    """Whether one fold's `FOLD_ARRAYS` can describe these training digits (`labels`, by position)
    and `n_test` test digits: shapes that agree, positions among the digits, the same given labels."""
    positions = fold["positions"]
    return (fold["test_probs"].shape == (n_test, 10) and fold["probs"].shape == (len(positions), 10)
            and positions.min(initial=0) >= 0 and positions.max(initial=0) < len(labels)
            and np.array_equal(fold["labels"], labels[positions]))


def combine_folds(n: int, folds: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold probabilities of all `n` training digits (`out_of_fold`), the folds' mean test
    probabilities) from every fold's `FOLD_ARRAYS`; ValueError as `out_of_fold`."""
    probs = out_of_fold(n, [(fold["positions"], fold["probs"]) for fold in folds])
    return probs, np.mean([fold["test_probs"] for fold in folds], axis=0)


def issue_table(split: str, issues: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    """`stages.lib.label_issues.rank_label_issues`' table with its positions turned into `index`
    (each digit's place in the official MNIST file) and the split named, columns `AUDIT_COLUMNS`;
    label qualities rounded to 6 decimals, so equal probabilities give equal bytes."""
    return pd.DataFrame({
        "split": split,
        "index": np.asarray(index)[issues["position"].to_numpy()].astype(np.int64),
        "given_label": issues["given_label"].to_numpy(),
        "suggested_label": issues["suggested_label"].to_numpy(),
        "label_quality": issues["label_quality"].to_numpy().round(6),
        "rank": issues["rank"].to_numpy(),
    }, columns=AUDIT_COLUMNS)


def issue_caption(row) -> str:
    """Three short lines under a flagged digit: its index, given and suggested label, label quality."""
    return f"#{row['index']}\ngiven {row['given_label']} \u2192 {row['suggested_label']}\nquality {row['label_quality']:.3f}"
