"""What a model answered for each digit, read off its probabilities: the prediction and its
confidence, the runner-up, the margin between the two and the entropy of all ten.

`predictions` tables them for any digits (the stages' tables, mnist-dvc, the drawing page) and
`describe` for chosen test digits beside their labels (the evaluate stage's examples, the
ambiguous stage's lists). They are kept apart from `ambiguity`, which ranks digits by these
numbers, because one of its definitions runs confident learning (`label_issues`, cleanlab): a
stage that only tables answers, such as evaluate, must not rerun when that changes.
"""

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


def predictions(probs: np.ndarray) -> pd.DataFrame:
    """What the model said about each digit, one row each: prediction, confidence, second,
    second_confidence, margin and entropy, floats rounded to 6 decimals (byte-stable CSV and JSON)."""
    prediction, confidence, second, second_p = top_two(probs)
    return pd.DataFrame({
        "prediction": prediction.astype(np.int64),
        "confidence": confidence.astype(np.float64),
        "second": second.astype(np.int64),
        "second_confidence": second_p.astype(np.float64),
        "margin": margin(probs),
        "entropy": entropy(probs),
    }).round(6)


def describe(probs: np.ndarray, labels: np.ndarray, positions: np.ndarray, index: np.ndarray | None = None) -> pd.DataFrame:
    """`predictions` of the digits at `positions`, in order, with their index, label and whether
    the prediction is correct. `index` maps positions to test-set indices (the `index` array of
    test.npz); without it the positions themselves are reported."""
    positions = np.asarray(positions, dtype=np.int64)
    index = np.arange(len(probs)) if index is None else np.asarray(index)
    table = predictions(probs[positions])
    table.insert(0, "index", index[positions].astype(np.int64))
    table.insert(1, "label", np.asarray(labels)[positions].astype(np.int64))
    table["correct"] = table["prediction"] == table["label"]
    return table
