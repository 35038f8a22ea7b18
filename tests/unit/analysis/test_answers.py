"""What a model answered for each digit, on hand-made probabilities: the two likeliest digits (ties
to the lower one), margin and entropy at their extremes, and the tables the stages write."""

import numpy as np
import pytest

from mnist_dvc.analysis.answers import describe, entropy, margin, top_two

COLUMNS = ["index", "label", "prediction", "confidence", "second", "second_confidence", "margin", "entropy", "correct"]


def answer(first: int, p: float, second: int) -> np.ndarray:
    """One probability row: `p` on digit `first`, the rest on `second`."""
    row = np.zeros(10, dtype=np.float32)
    row[first], row[second] = p, 1 - p
    return row


UNIFORM = np.full(10, 0.1, dtype=np.float32)
# position: label, what the model says
PROBS = np.stack([answer(3, 0.95, 5), answer(7, 0.9, 1), answer(4, 0.52, 9), answer(2, 0.6, 8), UNIFORM, answer(6, 0.9, 5)])
LABELS = np.array([3, 1, 4, 8, 0, 5], dtype=np.uint8)


def test_top_two_breaks_ties_towards_the_lower_digit():
    first, first_p, second, second_p = top_two(np.stack([UNIFORM, answer(7, 0.5, 2)]))
    assert first.tolist() == [0, 2] and second.tolist() == [1, 7]
    assert first_p[1] == pytest.approx(0.5) and second_p[1] == pytest.approx(0.5)


def test_margin_and_entropy_on_extremes():
    probs = np.vstack([np.eye(10, dtype=np.float32)[3], UNIFORM])
    assert margin(probs) == pytest.approx([1.0, 0.0])
    assert entropy(probs) == pytest.approx([0.0, np.log(10)], abs=1e-6)


def test_describe_reports_test_indices_and_plain_values():
    table = describe(PROBS, LABELS, np.array([3, 0]), index=np.array([100, 101, 102, 103, 104, 105]))
    assert list(table.columns) == COLUMNS
    rows = table.to_dict("records")  # as the stages write them to JSON
    assert rows[0] == {
        "index": 103, "label": 8, "prediction": 2, "confidence": 0.6, "second": 8,
        "second_confidence": 0.4, "margin": 0.2, "entropy": round(float(entropy(PROBS[3:4])[0]), 6),
        "correct": False,
    }
    assert rows[1]["index"] == 100 and rows[1]["correct"] is True
    assert all(type(value) in (int, float, bool) for row in rows for value in row.values())


def test_describe_without_an_index_reports_positions():
    assert describe(PROBS, LABELS, np.array([5, 1]))["index"].tolist() == [5, 1]


def test_describing_no_digits_gives_an_empty_table_with_every_column():
    table = describe(PROBS, LABELS, np.array([], dtype=np.int64))
    assert len(table) == 0 and list(table.columns) == COLUMNS
    assert list(~table["correct"]) == []  # as the stages mark wrong digits in a gallery
