"""Four answers to "which test digits is the model least sure about?", computed from its probabilities.

Each definition maps (probs (N,10), labels (N,), n) to at most `n` positions into those arrays,
most ambiguous first. They disagree on purpose: a confidently wrong digit is ambiguous to a
person but not to the model, while a small margin or a high entropy is ambiguity the model admits.
Equal scores are ordered by position, so the same probabilities always give the same list.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd

# Stops log(0) for a probability of exactly zero; contributes nothing measurable to the entropy.
_EPSILON = 1e-12


def top_two(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best and second-best class with their probabilities; equal probabilities go to the lower digit."""
    order = np.argsort(-probs, axis=1, kind="stable")
    rows = np.arange(len(probs))
    first, second = order[:, 0], order[:, 1]
    return first, probs[rows, first], second, probs[rows, second]


def margin(probs: np.ndarray) -> np.ndarray:
    """Gap between the two highest probabilities: near 0 when the model hesitates between two digits."""
    _, first_p, _, second_p = top_two(probs)
    return first_p.astype(np.float64) - second_p.astype(np.float64)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Predictive entropy in nats: 0 for a one-hot answer, log(10) for a uniform one."""
    p = probs.astype(np.float64)
    return -(p * np.log(np.clip(p, _EPSILON, 1.0))).sum(axis=1)


def _most(score: np.ndarray, n: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Positions of the `n` smallest scores among `candidates` (all by default), ties by position."""
    positions = np.arange(len(score)) if candidates is None else np.flatnonzero(candidates)
    order = np.lexsort((positions, score[positions]))
    return positions[order][:n].astype(np.int64)


def confident_wrong(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Misclassified digits, highest confidence first: where the model is sure and wrong (or the label is)."""
    prediction, confidence, _, _ = top_two(probs)
    return _most(-confidence.astype(np.float64), n, candidates=prediction != labels)


def least_confident(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits whose top probability is lowest, right or wrong."""
    _, confidence, _, _ = top_two(probs)
    return _most(confidence.astype(np.float64), n)


def smallest_margin(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits with the smallest gap between the two likeliest classes: a coin toss between two digits."""
    return _most(margin(probs), n)


def highest_entropy(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits with the most spread-out probabilities: the model has no clear favourite at all."""
    return _most(-entropy(probs), n)


DEFINITIONS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "confident_wrong": confident_wrong,
    "least_confident": least_confident,
    "smallest_margin": smallest_margin,
    "highest_entropy": highest_entropy,
}

def describe(probs: np.ndarray, labels: np.ndarray, positions: np.ndarray, index: np.ndarray | None = None) -> pd.DataFrame:
    """One row per position, in order: what the model said about that digit.

    Columns: index, label, prediction, confidence, second, second_confidence, margin, entropy,
    correct. `index` maps positions to test-set indices (the `index` array of test.npz); without
    it the positions themselves are reported. Floats are rounded to 6 decimals so the JSON and CSV
    written from it are byte-stable.
    """
    positions = np.asarray(positions, dtype=np.int64)
    index = np.arange(len(probs)) if index is None else np.asarray(index)
    chosen, given = probs[positions], np.asarray(labels)[positions].astype(np.int64)
    prediction, confidence, second, second_p = top_two(chosen)
    table = pd.DataFrame({
        "index": index[positions].astype(np.int64),
        "label": given,
        "prediction": prediction.astype(np.int64),
        "confidence": confidence.astype(np.float64),
        "second": second.astype(np.int64),
        "second_confidence": second_p.astype(np.float64),
        "margin": margin(chosen),
        "entropy": entropy(chosen),
        "correct": prediction == given,
    })
    return table.round(6)
