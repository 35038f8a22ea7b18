"""The review queue on simulated calibrated probabilities with planted label flips (which labels are
wrong is known), and the folder it writes. (Its explained pictures are drawn by the stages, through
`explain.save_explained_galleries`: tests/stages/test_ambiguous.py and test_audit.py.)"""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import softmax

from mnist_dvc.analysis.label_issues import label_quality, rank_label_issues
from mnist_dvc.analysis.review_queue import explained_galleries, flagged_positions, queue_order, review_queue, write_queue
from mnist_dvc.io.queue_format import DIGITS, EXPLAINED, GALLERY, PROB_COLUMNS, QUEUE_COLUMNS, QUEUE_CSV

N = 2000
OFFSET = 30_000  # official index of position 0, so that tables that confuse the two fail


@pytest.fixture(scope="module")
def model_like():
    """Probabilities for 2,000 digits from a model about 99% right, 2% of the labels flipped to
    another digit at random, and which ones."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, N)
    probs = softmax(rng.gamma(9.0, 0.7, N)[:, None] * np.eye(10)[truth] + rng.standard_normal((N, 10)), axis=1)
    flipped = rng.choice(N, N // 50, replace=False)
    given = truth.copy()
    given[flipped] = (truth[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return probs, truth, given, flipped


def test_flagged_digits_come_first_in_the_audit_s_order_then_every_other_by_label_quality(model_like):
    probs, _, given, _ = model_like
    flagged = flagged_positions(probs, given)
    np.testing.assert_array_equal(flagged, rank_label_issues(probs, given)["position"])
    order = queue_order(probs, given, flagged)
    assert sorted(order.tolist()) == list(range(N))  # every digit once
    np.testing.assert_array_equal(order[: len(flagged)], flagged)  # the audit's issues.csv order
    rest = order[len(flagged):]
    quality = label_quality(probs, given)[rest]
    assert np.all(np.diff(quality) >= 0)
    ties = np.flatnonzero(np.diff(quality) == 0)
    assert np.all(rest[ties] < rest[ties + 1])  # equal qualities: the lower position first


def test_the_queue_s_top_holds_the_planted_flips(model_like):
    probs, truth, given, flipped = model_like
    queue = review_queue("train", probs, given, np.arange(N) + OFFSET, 2 * len(flipped))
    table = queue.table
    assert list(table.columns) == QUEUE_COLUMNS and len(table) == 2 * len(flipped)
    assert np.isin(flipped, queue.positions).mean() >= 0.95  # recall at twice as many digits as flips
    np.testing.assert_array_equal(table["index"], queue.positions + OFFSET)
    assert table["rank"].tolist() == list(range(1, len(table) + 1)) and set(table["split"]) == {"train"}
    np.testing.assert_array_equal(table["given_label"], given[queue.positions])
    np.testing.assert_array_equal(table["suggested_label"], probs[queue.positions].argmax(axis=1))
    np.testing.assert_allclose(table["label_quality"], probs[queue.positions, given[queue.positions]], atol=1e-6)
    np.testing.assert_allclose(table[PROB_COLUMNS], probs[queue.positions], atol=1e-6)
    assert table["flagged"].dtype == bool and table["flagged"].is_monotonic_decreasing  # flagged first
    assert table["flagged"].sum() == len(flagged_positions(probs, given))
    top_two = np.sort(probs[queue.positions], axis=1)[:, -2:]
    np.testing.assert_allclose(table["margin"], top_two[:, 1] - top_two[:, 0], atol=1e-6)
    assert table["entropy"].between(0, np.log(10)).all()
    assert table["digit"].tolist() == [f"{DIGITS}/{i}.png" for i in table["index"]]
    assert table["explained"].tolist() == [f"{EXPLAINED}/{i}.png" for i in table["index"]]
    planted = np.isin(queue.positions, flipped)
    assert (table["suggested_label"][planted] == truth[queue.positions[planted]]).mean() >= 0.95


def test_only_candidates_are_queued_but_flags_count_every_digit(model_like):
    probs, _, given, flipped = model_like
    candidates = np.ones(N, dtype=bool)
    candidates[flipped[:10]] = False  # say, digits a person already corrected
    everyone = review_queue("train", probs, given, np.arange(N), N)
    queue = review_queue("train", probs, given, np.arange(N), N, candidates=candidates)
    assert len(queue.table) == N - 10 and not np.isin(flipped[:10], queue.positions).any()
    np.testing.assert_array_equal(queue.positions, everyone.positions[candidates[everyone.positions]])


def test_a_queue_longer_than_the_digits_holds_them_all_and_an_empty_one_none(model_like):
    probs, _, given, _ = model_like
    assert len(review_queue("test", probs[:50], given[:50], np.arange(50), 1000).table) == 50
    empty = review_queue("test", probs, given, np.arange(N), 0)
    assert list(empty.table.columns) == QUEUE_COLUMNS and len(empty.table) == 0 and len(empty.positions) == 0


def test_with_a_single_label_nothing_is_flagged_and_quality_alone_orders():
    probs = softmax(np.random.default_rng(1).standard_normal((20, 10)), axis=1)
    labels = np.full(20, 4)
    queue = review_queue("test", probs, labels, np.arange(20), 20)
    assert not queue.table["flagged"].any()
    np.testing.assert_array_equal(queue.positions, np.argsort(probs[:, 4], kind="stable"))


def test_write_queue_writes_the_table_each_digit_as_written_and_the_gallery(model_like, tmp_path):
    probs, _, given, _ = model_like
    written = np.random.default_rng(2).integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    queue = review_queue("test", probs, given, np.arange(N) + OFFSET, 12)
    write_queue(tmp_path, queue, written, explained=True)
    table = pd.read_csv(tmp_path / QUEUE_CSV, keep_default_na=False)
    assert list(table.columns) == QUEUE_COLUMNS and len(table) == 12
    assert table["flagged"].tolist() == queue.table["flagged"].tolist()  # written True/False
    assert sorted(path.name for path in (tmp_path / DIGITS).iterdir()) == sorted(f"{i}.png" for i in table["index"])
    for row in table.itertuples():
        with Image.open(tmp_path / row.digit) as image:
            np.testing.assert_array_equal(np.asarray(image)[::4, ::4], written[row.index - OFFSET])  # 4x larger, as written
    with Image.open(tmp_path / GALLERY) as image:
        assert image.width >= 600
    assert table["explained"].tolist() == [f"{EXPLAINED}/{i}.png" for i in table["index"]]

    write_queue(tmp_path, queue, written, explained=False)  # a scikit-learn model: nothing to explain with
    assert (pd.read_csv(tmp_path / QUEUE_CSV, keep_default_na=False)["explained"] == "").all()


def test_each_queued_digit_gets_an_explained_gallery_of_its_own(model_like, tmp_path):
    probs, _, given, _ = model_like
    queue = review_queue("test", probs, given, np.arange(N) + OFFSET, 5)
    at = np.array([7, 3, 9, 0, 1])
    galleries = explained_galleries(queue, tmp_path, at)
    assert [gallery.at.tolist() for gallery in galleries] == [[7], [3], [9], [0], [1]]
    assert [gallery.path for gallery in galleries] == [tmp_path / name for name in queue.table["explained"]]
    first = queue.table.iloc[0]
    assert galleries[0].captions[0].startswith(f"1. #{first['index']}\ngiven {first['given_label']} \u2192 {first['suggested_label']}")
    assert f"#{first['index']}, rank 1 of the review queue" in galleries[0].title
