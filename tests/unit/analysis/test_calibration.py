"""Temperature scaling and calibration error on synthetic logits and hand-made probabilities, where
the right answer is known."""

import numpy as np
import pytest
from scipy.special import softmax

from mnist_dvc.analysis.calibration import (
    apply_temperature,
    calibrate,
    calibrated_probs,
    calibration_figures,
    expected_calibration_error,
    fit_temperature,
    logits_from_probs,
    recorded_temperature,
    reliability_table,
    reliability_tables,
)


def sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row, drawn from that row's distribution."""
    return (probs.cumsum(axis=1) < rng.random((len(probs), 1))).sum(axis=1).clip(0, probs.shape[1] - 1)


def confident(label_and_confidence: list[tuple[int, float]]) -> np.ndarray:
    """One probability row per (predicted digit, confidence), the rest spread evenly over the others."""
    probs = np.zeros((len(label_and_confidence), 10))
    for i, (digit, p) in enumerate(label_and_confidence):
        probs[i] = (1 - p) / 9
        probs[i, digit] = p
    return probs.astype(np.float32)


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_a_known_temperature_is_recovered(true_temperature):
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.standard_normal((20_000, 10))
    labels = sample_labels(softmax(logits / true_temperature, axis=1), rng)
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_the_fit_works_as_well_from_probabilities_as_from_logits():
    rng = np.random.default_rng(1)
    logits = 3.0 * rng.standard_normal((5_000, 10)) + 7.0  # the shift that log(softmax) removes
    labels = sample_labels(softmax(logits / 2.0, axis=1), rng)
    from_probs = fit_temperature(logits_from_probs(softmax(logits, axis=1)), labels)
    assert from_probs == pytest.approx(fit_temperature(logits, labels), rel=1e-4)


def test_applying_a_temperature_keeps_the_prediction_and_moves_the_confidence():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    soft, same, sharp = (apply_temperature(logits, t) for t in (2.0, 1.0, 0.5))
    assert same.dtype == np.float32
    np.testing.assert_allclose(same, softmax(logits, axis=1), rtol=1e-6)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert (soft.argmax(axis=1) == sharp.argmax(axis=1)).all()
    assert (soft.max(axis=1) < same.max(axis=1)).all() and (same.max(axis=1) < sharp.max(axis=1)).all()
    with pytest.raises(ValueError):
        apply_temperature(logits, 0.0)


def test_stored_probabilities_are_calibrated_as_the_logits_they_came_from_would_be():
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]]) + 5.0  # the shift that log(softmax) removes
    probs = softmax(logits, axis=1).astype(np.float32)
    for temperature in (0.5, 1.0, 2.0):
        calibrated = calibrated_probs(probs, temperature)
        assert calibrated.dtype == np.float32
        np.testing.assert_allclose(calibrated, apply_temperature(logits, temperature), rtol=1e-5)
    with pytest.raises(ValueError):
        calibrated_probs(probs, 0.0)


def test_a_calibrated_model_has_zero_error():
    # Ten digits at confidence 0.8, eight of them right.
    probs = confident([(3, 0.8)] * 10)
    labels = np.array([3] * 8 + [5] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-6)


def test_full_confidence_at_half_accuracy_is_an_error_of_one_half():
    probs = np.eye(10, dtype=np.float32)[[1, 1, 2, 2]]
    labels = np.array([1, 7, 2, 7])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5)


def test_two_bins_computed_by_hand():
    # Bin (13/15, 14/15]: 4 digits at 0.9, 3 right: gap 0.15. Bin (10/15, 11/15]: 6 digits at 0.7, 3 right: gap 0.2.
    probs = confident([(0, 0.9)] * 4 + [(1, 0.7)] * 6)
    labels = np.array([0, 0, 0, 9] + [1, 1, 1, 9, 9, 9])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4 * 0.15 + 0.6 * 0.2, abs=1e-6)

    table = reliability_table(probs, labels)
    assert list(table.columns) == ["bin_lower", "bin_upper", "confidence", "accuracy", "count"]
    np.testing.assert_allclose(table["bin_lower"], [10 / 15, 13 / 15])
    np.testing.assert_allclose(table["bin_upper"], [11 / 15, 14 / 15])
    np.testing.assert_allclose(table["confidence"], [0.7, 0.9], rtol=1e-6)
    np.testing.assert_allclose(table["accuracy"], [0.5, 0.75])
    assert table["count"].tolist() == [6, 4]


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    # 0.75 is exact in float32, so it sits on the edge between (0.5, 0.75] and (0.75, 1].
    table = reliability_table(confident([(0, 0.75), (0, 1.0)]), np.array([0, 0]), bins=4)
    np.testing.assert_allclose(table["bin_upper"], [0.75, 1.0])


def test_calibrating_overconfident_predictions_softens_them_without_changing_any():
    rng = np.random.default_rng(2)
    logits = 3.0 * rng.standard_normal((4000, 10))
    labels = sample_labels(softmax(logits, axis=1), rng)
    overconfident = softmax(3 * logits, axis=1).astype(np.float32)  # as if T = 1/3 had been applied
    calibrated, temperature = calibrate(overconfident[2000:], overconfident[:2000], labels[:2000])
    assert temperature == pytest.approx(3.0, rel=0.15) and calibrated.dtype == np.float32
    np.testing.assert_array_equal(calibrated.argmax(axis=1), overconfident[2000:].argmax(axis=1))
    figures = calibration_figures(overconfident[2000:], calibrated, labels[2000:], temperature)
    assert list(figures) == ["temperature", "ece_before", "ece_after", "loss_calibrated"]
    assert figures["ece_after"] < figures["ece_before"] and figures["temperature"] == round(temperature, 6)
    with pytest.raises(ValueError):  # no held-out digits: nothing to fit on
        calibrate(overconfident, overconfident[:0], labels[:0])


def test_both_reliability_tables_raw_rows_first():
    probs = confident([(0, 0.9)] * 4 + [(1, 0.7)] * 6)
    labels = np.array([0, 0, 0, 9] + [1, 1, 1, 9, 9, 9])
    table = reliability_tables(probs, confident([(0, 0.8)] * 10), labels)
    assert list(table.columns) == ["probabilities", "bin_lower", "bin_upper", "confidence", "accuracy", "count"]
    assert table["probabilities"].tolist() == ["raw", "raw", "calibrated"]
    assert table["count"].tolist() == [6, 4, 10] and table["bin_lower"].tolist() == [round(10 / 15, 6), round(13 / 15, 6), 0.8]  # 0.8 in float32 is just above 12/15


@pytest.mark.parametrize("call", [
    lambda: fit_temperature(np.zeros((0, 10)), np.zeros(0, dtype=int)),
    lambda: expected_calibration_error(np.zeros((0, 10)), np.zeros(0, dtype=int)),
    lambda: reliability_table(np.zeros((0, 10)), np.zeros(0, dtype=int)),
    lambda: fit_temperature(np.zeros((3, 10)), np.zeros(2, dtype=int)),
])
def test_empty_or_mismatched_input_raises(call):
    with pytest.raises(ValueError):
        call()


def test_a_recorded_temperature_is_a_positive_number_or_none():
    assert recorded_temperature({"temperature": 0.417303, "accuracy": 0.9951}) == 0.417303
    assert recorded_temperature({"temperature": 2}) == 2.0
    for record in ({}, {"temperature": 0}, {"temperature": -1.0}, {"temperature": True}, {"temperature": "0.4"}, [0.4], None):
        assert recorded_temperature(record) is None
