"""How good the predictions are, as plain numbers, and which test digits illustrate it best.

Everything here is a pure function of the probabilities and the labels, rounded to 6 decimals,
so `eval/metrics.json` is byte-identical whenever the predictions are: DVC then reports a change
in metrics only when the model really changed.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support

from mnist_dvc import NUM_CLASSES
from mnist_dvc.models.inference import PREDICT_BATCH, Classifier, predict_proba

DIGITS = tuple(range(NUM_CLASSES))
# Keeps log(0) finite when a model puts exactly zero probability on the true digit.
_LOSS_CLIP = 1e-7


def _r(value) -> float:
    return round(float(value), 6)


def summarize(probs: np.ndarray, labels: np.ndarray) -> dict:
    """The headline figures: accuracy, cross-entropy loss, error count and macro F1.

    Macro F1 averages over the digits that occur among the labels or predictions (scikit-learn's
    default), so a small test subset missing a digit is not penalised for it.
    """
    labels = np.asarray(labels).astype(np.int64)
    predictions = probs.argmax(axis=1)
    true_p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), _LOSS_CLIP, 1.0)
    return {
        "accuracy": _r((predictions == labels).mean()),
        "loss": _r(-np.log(true_p).mean()),
        "errors": int((predictions != labels).sum()),
        "macro_f1": _r(f1_score(labels, predictions, average="macro", zero_division=0)),
    }


def per_digit(probs: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1 and support of every digit, one row each (zeros for a digit that never occurs)."""
    precision, recall, f1, support = precision_recall_fscore_support(
        np.asarray(labels).astype(np.int64), probs.argmax(axis=1), labels=list(DIGITS), zero_division=0
    )
    table = pd.DataFrame({"digit": DIGITS, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return table.round(6)


def example_positions(probs: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` right then up to `count` wrong digits worth showing, as positions into `probs`.

    Right ones are spread over the digits (the most confident 0, 1, ..., 9, then the second most
    confident of each, ...) so the page shows every class; wrong ones are the most confident
    errors, the most instructive. Ties go to the lower position, so the choice is deterministic.
    """
    labels = np.asarray(labels).astype(np.int64)
    predictions = probs.argmax(axis=1)
    confidence = probs.max(axis=1).astype(np.float64)
    positions = np.arange(len(labels))
    by_confidence = np.lexsort((positions, -confidence))  # most confident first, ties by position
    right = by_confidence[predictions[by_confidence] == labels[by_confidence]]
    wrong = by_confidence[predictions[by_confidence] != labels[by_confidence]]
    # Rank of each right digit within its own class, then interleave classes rank by rank.
    rank_in_class = np.zeros(len(right), dtype=np.int64)
    for digit in DIGITS:
        mask = labels[right] == digit
        rank_in_class[mask] = np.arange(mask.sum())
    spread = right[np.lexsort((labels[right], rank_in_class))]
    return np.concatenate([spread[:count], wrong[:count]]).astype(np.int64)


def score_on_test(classifier: Classifier, test: dict, flagged: np.ndarray, batch_size: int = PREDICT_BATCH) -> dict:
    """The headline figures (`summarize`) of `classifier` on `test` (a prepared
    test set: its `images`, `labels` and official `index`), and how many of the test digits at
    official indices `flagged` there are (`label_issues`) and it predicts other than their given
    label (`label_issues_predicted_otherwise`)."""
    probs = predict_proba(classifier, test["images"], batch_size)
    at = np.isin(test["index"], flagged)
    return {**summarize(probs, test["labels"]), "label_issues": int(at.sum()),
            "label_issues_predicted_otherwise": int((probs[at].argmax(axis=1) != test["labels"][at]).sum())}
