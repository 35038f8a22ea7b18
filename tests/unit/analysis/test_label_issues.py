"""Confident learning on simulated out-of-sample probabilities with planted label flips, where we
know which labels are wrong."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from mnist_dvc.analysis.label_issues import ISSUE_COLUMNS, label_quality, pair_counts, rank_label_issues

N = 10_000


@pytest.fixture(scope="module")
def model_like():
    """A model's probabilities for 10,000 digits, about 99% of them right: a logit of varying
    strength (some digits are hard) on the true digit plus Gaussian noise on all ten. Also 1% of
    the labels flipped to another digit at random, and which ones."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, N)
    logits = rng.gamma(9.0, 0.7, N)[:, None] * np.eye(10)[truth] + rng.standard_normal((N, 10))
    probs = softmax(logits, axis=1).astype(np.float32)
    assert 0.985 < (probs.argmax(axis=1) == truth).mean() < 0.995
    flipped = rng.choice(N, N // 100, replace=False)
    given = truth.copy()
    given[flipped] = (truth[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return probs, truth, given, flipped


def test_planted_flips_are_at_the_top_of_the_label_quality_ranking(model_like):
    probs, _, given, flipped = model_like
    quality = label_quality(probs, given)
    assert quality.shape == (N,)
    lowest_2_percent = np.argsort(quality, kind="stable")[: N // 50]
    assert np.isin(flipped, lowest_2_percent).mean() >= 0.9


def test_flagged_digits_are_mostly_planted_flips_ranked_by_quality(model_like):
    probs, truth, given, flipped = model_like
    issues = rank_label_issues(probs, given)
    assert list(issues.columns) == ISSUE_COLUMNS
    assert np.isin(issues["position"], flipped).mean() >= 0.9  # precision
    assert np.isin(flipped, issues["position"]).mean() >= 0.75  # recall
    assert issues["rank"].tolist() == list(range(1, len(issues) + 1))
    assert issues["label_quality"].is_monotonic_increasing
    positions = issues["position"].to_numpy()
    np.testing.assert_array_equal(issues["given_label"], given[positions])
    np.testing.assert_array_equal(issues["suggested_label"], probs[positions].argmax(axis=1))
    np.testing.assert_allclose(issues["label_quality"], probs[positions, given[positions]], rtol=1e-6)
    # Among the planted flips, the model's choice is nearly always the digit it was before the flip.
    planted = np.isin(positions, flipped)
    assert (issues["suggested_label"][planted] == truth[positions[planted]]).mean() >= 0.95


def test_the_same_labels_unflipped_give_few_issues(model_like):
    probs, truth, _, _ = model_like
    assert len(rank_label_issues(probs, truth)) <= N // 500


def test_confident_correct_probabilities_give_no_issues():
    labels = np.arange(1000) % 10
    probs = np.full((1000, 10), 0.01 / 9, dtype=np.float32)
    probs[np.arange(1000), labels] = 0.99
    issues = rank_label_issues(probs, labels)
    assert issues.empty and list(issues.columns) == ISSUE_COLUMNS
    assert pair_counts(issues).empty


def test_the_ranking_is_deterministic_and_breaks_ties_by_position(model_like):
    probs, _, given, _ = model_like
    # The same probabilities and labels appended twice, so flagged digits can have an identical twin.
    doubled = rank_label_issues(np.concatenate([probs, probs]), np.concatenate([given, given]))
    pd.testing.assert_frame_equal(doubled, rank_label_issues(np.concatenate([probs, probs]), np.concatenate([given, given])))
    positions = doubled["position"].to_numpy()
    assert np.isin(positions + N, positions).sum() > 10  # twins both flagged
    np.testing.assert_array_equal(doubled.index, doubled.sort_values(["label_quality", "position"]).index)


def test_pair_counts_count_each_confusion_commonest_first():
    issues = pd.DataFrame({"given_label": [4, 7, 4, 1, 7, 4], "suggested_label": [9, 1, 9, 7, 1, 6]})
    expected = pd.DataFrame({"given_label": [4, 7, 1, 4], "suggested_label": [9, 1, 7, 6], "count": [2, 2, 1, 1]})
    pd.testing.assert_frame_equal(pair_counts(issues), expected)
