"""Which cross-validation fold each training digit belongs to, for out-of-fold predictions.

Confident learning needs, for every training digit, probabilities from a model that never saw it:
train K models, each on all folds but one, and let each predict its held-out fold. Folds are
stratified, so every fold has the same mix of digits (within one), and fixed by a seed, so the
same labels and seed always give the same folds.
"""

import numpy as np
from sklearn.model_selection import StratifiedKFold


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
