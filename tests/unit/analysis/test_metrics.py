"""Metrics and example choice on hand-made predictions, and the byte-stability of the metrics JSON."""

import json

import numpy as np
import pytest

from mnist_dvc.analysis.metrics import example_positions, per_digit, score_on_test, summarize
from mnist_dvc.io.atomic import write_json


def one_hot_ish(predictions: list[int], confidence: list[float]) -> np.ndarray:
    """Probabilities putting `confidence` on the predicted digit and the rest evenly elsewhere."""
    probs = np.empty((len(predictions), 10), dtype=np.float32)
    for row, (digit, p) in enumerate(zip(predictions, confidence)):
        probs[row] = (1 - p) / 9
        probs[row, digit] = p
    return probs


# Labels 0,0,1,1,2,2,3,3; two mistakes: position 1 (0 -> 1) and position 5 (2 -> 3).
LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3], dtype=np.uint8)
PREDICTIONS = [0, 1, 1, 1, 2, 3, 3, 3]
CONFIDENCE = [0.9, 0.8, 0.7, 0.95, 0.6, 0.99, 0.5, 0.5]
PROBS = one_hot_ish(PREDICTIONS, CONFIDENCE)


def test_summary_of_a_hand_made_case():
    metrics = summarize(PROBS, LABELS)
    assert set(metrics) == {"accuracy", "loss", "errors", "macro_f1"}
    assert metrics["accuracy"] == 0.75
    assert metrics["errors"] == 2
    true_p = [0.9, (1 - 0.8) / 9, 0.7, 0.95, 0.6, (1 - 0.99) / 9, 0.5, 0.5]
    assert metrics["loss"] == pytest.approx(-np.mean(np.log(true_p)), abs=1e-5)
    # Macro F1 over the four digits that occur (0..3), not diluted by the six absent ones.
    f1 = [2 / 3, 0.8, 2 / 3, 0.8]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1), abs=1e-6)


def test_per_digit_scores_of_a_hand_made_case():
    table = per_digit(PROBS, LABELS)
    assert list(table.columns) == ["digit", "precision", "recall", "f1", "support"]
    digits = {row["digit"]: {key: value for key, value in row.items() if key != "digit"} for row in table.to_dict("records")}
    assert list(digits) == list(range(10))
    assert digits[0] == {"precision": 1.0, "recall": 0.5, "f1": round(2 / 3, 6), "support": 2}
    assert digits[1]["precision"] == round(2 / 3, 6) and digits[1]["recall"] == 1.0
    assert digits[2]["recall"] == 0.5 and digits[3]["recall"] == 1.0
    assert digits[9] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}  # never occurs: zeros, no warning
    assert table["support"].sum() == len(LABELS)
    assert summarize(PROBS, LABELS)["macro_f1"] == pytest.approx(table["f1"][:4].mean(), abs=1e-6)


def test_loss_stays_finite_when_the_true_digit_gets_zero_probability():
    probs = np.eye(10, dtype=np.float32)[[1]]
    assert np.isfinite(summarize(probs, np.array([0]))["loss"])


def test_metrics_json_is_byte_stable(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_json(first, summarize(PROBS, LABELS))
    write_json(second, summarize(PROBS.copy(), LABELS.astype(np.int64)))
    assert first.read_bytes() == second.read_bytes()
    parsed = json.loads(first.read_text())
    assert all(type(v) in (int, float) for v in (parsed["accuracy"], parsed["loss"], parsed["errors"]))


def test_examples_spread_right_ones_over_digits_and_rank_errors_by_confidence():
    # Right, by digit then confidence: 0 -> [0]; 1 -> [3 (0.95), 2 (0.7)]; 2 -> [4]; 3 -> [6, 7] (tie: position).
    picked = example_positions(PROBS, LABELS, 10)
    assert picked.tolist() == [0, 3, 4, 6, 2, 7, 5, 1]
    assert example_positions(PROBS, LABELS, 3).tolist() == [0, 3, 4, 5, 1]
    assert picked.dtype == np.int64


def test_examples_without_errors_are_only_right_ones():
    # Every prediction right: the most confident 0 (position 0), then the most confident 1 (position 3).
    assert example_positions(PROBS, PROBS.argmax(axis=1), 2).tolist() == [0, 3]


def test_test_scores_count_the_flagged_digits_predicted_otherwise():
    images = np.zeros((4, 28, 28), np.uint8)
    for i, row in enumerate((1, 2, 3, 4)):
        images[i, row, 5] = 255  # a classifier answering the row of the ink predicts 1, 2, 3, 4
    test = {"images": images, "labels": np.array([1, 2, 0, 0]), "index": np.array([10, 11, 12, 13])}
    scores = score_on_test(lambda images: np.eye(10, dtype=np.float32)[np.argmax(images.max(axis=2), axis=1) % 10], test, flagged=np.array([11, 12, 99]))
    assert scores["accuracy"] == 0.5 and scores["errors"] == 2
    assert scores["label_issues"] == 2 and scores["label_issues_predicted_otherwise"] == 1  # 12 is, 11 is not
