"""The five ambiguity rankings on hand-made probabilities, where the right answer is known, and
new digits judged against their lists."""

import numpy as np
import pytest

from mnist_dvc.analysis.ambiguity import (
    DEFINITIONS,
    SCORES,
    calibration_temperature,
    confident_wrong,
    cutoffs,
    highest_entropy,
    label_issues,
    least_confident,
    smallest_margin,
    verdicts,
)
from mnist_dvc.analysis.answers import describe, predictions
from mnist_dvc.errors import UserError


def rows(*spec: dict[int, float]) -> np.ndarray:
    """One probability row per dict {digit: p}; the rest of the mass spread evenly over other digits."""
    probs = np.zeros((len(spec), 10), dtype=np.float64)
    for i, given in enumerate(spec):
        rest = (1 - sum(given.values())) / (10 - len(given))
        probs[i] = rest
        for digit, p in given.items():
            probs[i, digit] = p
    return probs.astype(np.float32)


# position: label, what the model says
PROBS = rows(
    {3: 0.95, 5: 0.05},  # 0: right, sure
    {7: 0.90, 1: 0.10},  # 1: wrong (label 1), very confident
    {4: 0.50, 9: 0.48},  # 2: right, near coin toss
    {2: 0.60, 8: 0.40},  # 3: wrong (label 8), confident-ish
    {},  # 4: uniform: least confident, highest entropy, zero margin
    {6: 0.90, 5: 0.10},  # 5: wrong (label 5), same confidence as 1
)
LABELS = np.array([3, 1, 4, 8, 0, 5], dtype=np.uint8)


def test_confident_wrong_orders_errors_by_confidence_ties_by_position():
    assert confident_wrong(PROBS, LABELS, 10).tolist() == [1, 5, 3]
    assert confident_wrong(PROBS, LABELS, 2).tolist() == [1, 5]


def test_confident_wrong_returns_fewer_when_there_are_few_errors():
    assert confident_wrong(PROBS, PROBS.argmax(axis=1), 5).tolist() == []
    assert confident_wrong(PROBS, LABELS, 0).tolist() == []


def test_least_confident():
    assert least_confident(PROBS, LABELS, 3).tolist() == [4, 2, 3]


def test_smallest_margin():
    assert smallest_margin(PROBS, LABELS, 4).tolist() == [4, 2, 3, 1]


def test_highest_entropy():
    assert highest_entropy(PROBS, LABELS, 2).tolist() == [4, 2]


def test_equal_scores_keep_position_order_in_every_definition():
    """(label_issues needs a test set to compare with: its ties are tested below.)"""
    probs = np.tile(rows({5: 0.6, 6: 0.4}), (4, 1))
    labels = np.full(4, 6)
    for name, definition in DEFINITIONS.items():
        if name != "label_issues":
            assert definition(probs, labels, 3).tolist() == [0, 1, 2], name


def confidently_right(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` digits, labels 0-9 in turn, each given 0.9 to 0.99 probability by the model, rightly."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    return rows(*({int(label): float(p)} for label, p in zip(labels, rng.uniform(0.9, 0.99, count)))), labels


def test_label_issues_puts_planted_flips_first_least_likely_label_first():
    probs, labels = confidently_right(300)
    probs[[0, 1]] = rows({2: 0.55, 7: 0.45}, {4: 0.5, 9: 0.49})  # hesitant but rightly labelled: not label issues
    labels[[0, 1]] = [2, 4]
    # Flipped labels, the model sure of the real digit: 0.999, 0.99 and 0.95 of it, so the given labels
    # get 0.0001, 0.0011 and 0.0056: the likeliest wrong label comes first.
    flips = {120: (0.95, 5), 37: (0.999, 3), 251: (0.99, 8)}
    for position, (p, given) in flips.items():
        probs[position] = rows({int(labels[position]): p})[0]
        labels[position] = given
    assert label_issues(probs, labels, 10).tolist() == [37, 251, 120]  # and nothing else, the hesitant ones neither
    assert label_issues(probs, labels, 2).tolist() == [37, 251]
    assert label_issues(probs, labels, 10).dtype == np.int64


def test_label_issues_orders_equal_label_qualities_by_position():
    probs, labels = confidently_right(200)
    for position in (150, 30, 90):
        probs[position] = rows({int(labels[position]): 0.99})[0]
        labels[position] = (labels[position] + 1) % 10
    assert label_issues(probs, labels, 3).tolist() == [30, 90, 150]


def test_label_issues_finds_none_among_right_labels_or_with_a_single_label():
    probs, labels = confidently_right(200)
    assert label_issues(probs, labels, 5).tolist() == []
    assert label_issues(rows({3: 0.1}, {4: 0.9}), np.array([3, 3]), 5).tolist() == []  # one class: nothing to compare


def test_label_issues_has_no_one_digit_cutoff_and_is_ignored_when_judging_new_digits():
    assert "label_issues" not in SCORES
    summary = {name: {"digits": describe(PROBS, LABELS, DEFINITIONS[name](PROBS, LABELS, 2)).to_dict("records")}
               for name in ("least_confident", "confident_wrong")}
    summary["label_issues"] = {"digits": describe(PROBS, LABELS, np.array([1, 5])).to_dict("records")}
    cutoff = cutoffs(summary)
    assert sorted(cutoff) == ["confident_wrong", "least_confident"]
    judged = verdicts(predictions(PROBS), {**cutoff, "label_issues": 0.5}, LABELS)
    assert judged.tolist() == verdicts(predictions(PROBS), cutoff, LABELS).tolist()


def test_the_summary_s_temperature_is_read_and_a_summary_without_one_says_to_rerun_the_stage():
    assert calibration_temperature({"temperature": 0.417303, "least_confident": {"digits": []}}, "summary.json") == 0.417303
    for summary in ({"least_confident": {"digits": []}}, {"temperature": None}, {"temperature": -1.0}, {"temperature": True}, []):
        with pytest.raises(UserError, match=r"^data/ambiguous/summary.json: no calibration temperature .*rerun the ambiguous stage \(dvc repro\)$"):
            calibration_temperature(summary, "data/ambiguous/summary.json")


def test_definitions_return_int64_positions_and_respect_n():
    assert list(DEFINITIONS) == ["confident_wrong", "least_confident", "smallest_margin", "highest_entropy", "label_issues"]
    for definition in DEFINITIONS.values():
        picked = definition(PROBS, LABELS, 2)
        assert picked.dtype == np.int64 and len(picked) <= 2
