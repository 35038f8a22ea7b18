"""The second training's set: flagged digits left out with their copies, the hardest unflagged
digits oversampled with fresh distortions, and audit tables checked to describe these digits."""

import numpy as np
import pandas as pd
import pytest

from mnist_dvc.audit.curation import (
    ISSUE_KEYS,
    QUALITY_KEYS,
    AuditTableError,
    OtherDigits,
    check_same_digits,
    curated_training_set,
    hardest,
    read_audit_table,
)

STRENGTHS = {"rotation_deg": 10.0, "shift_px": 2.0, "scale": 0.1, "shear_deg": 10.0, "elastic_alpha": 8.0, "elastic_sigma": 3.0}


@pytest.fixture
def digits(mnist_train):
    """Six real digits at official indices 10..15, then one cached copy of each (as train.npz holds them)."""
    images, labels = mnist_train
    index = np.tile(np.arange(10, 16), 2)
    quality = pd.Series([0.9, 0.2, 0.5, 0.01, 0.2, 0.99], index=pd.Index(np.arange(10, 16), name="index"), name="label_quality")
    return images[index], labels[index], index, quality


def curate(digits, **changes):
    images, labels, index, quality = digits
    options = {"flagged": np.array([13]), "quality": quality, "exclude_label_issues": False, "hard_digits": 0,
               "hard_copies": 3, "rng": np.random.default_rng(0), "strengths": STRENGTHS, **changes}
    return curated_training_set(images, labels, index, **options)


def test_with_nothing_asked_the_set_is_unchanged(digits):
    images, labels, summary = curate(digits)
    np.testing.assert_array_equal(images, digits[0])
    np.testing.assert_array_equal(labels, digits[1])
    assert summary == {"left_out_digits": 0, "left_out_images": 0, "oversampled_digits": 0, "added_images": 0, "training_images": 12}


def test_a_flagged_digit_leaves_with_its_cached_copy(digits):
    images, labels, summary = curate(digits, exclude_label_issues=True)
    kept = digits[2] != 13
    np.testing.assert_array_equal(images, digits[0][kept])
    np.testing.assert_array_equal(labels, digits[1][kept])
    assert summary["left_out_digits"] == 1 and summary["left_out_images"] == 2 and summary["training_images"] == 10


def test_the_hardest_unflagged_digits_come_back_freshly_distorted(digits):
    images, labels, summary = curate(digits, hard_digits=2)
    # 13 (quality 0.01) is flagged, so not "hard"; 11 and 14 tie at 0.2: both, lower index first.
    assert hardest(digits[3], np.array([10, 11, 12, 14, 15]), 2).tolist() == [11, 14]
    added, sources = images[12:], digits[0][[1, 4]]
    assert summary["oversampled_digits"] == 2 and summary["added_images"] == 6 and len(images) == 18
    np.testing.assert_array_equal(labels[12:], np.tile(digits[1][[1, 4]], 3))
    for copy, source in zip(added, np.tile(sources, (3, 1, 1))):
        assert not np.array_equal(copy, source) and abs(int(copy.sum()) - int(source.sum())) < 0.3 * source.sum()  # the same digit, moved
    assert len({copy.tobytes() for copy in added}) == 6  # every copy distorted afresh
    again, _, _ = curate(digits, hard_digits=2)
    np.testing.assert_array_equal(again, images)  # same seed, same copies


def test_more_hard_digits_than_unflagged_ones_is_an_error(digits):
    with pytest.raises(ValueError, match="only 5 training digits are not flagged"):
        curate(digits, hard_digits=6)


def test_audit_tables_missing_unreadable_or_foreign_name_the_file_and_what_is_wrong(tmp_path, digits):
    path = tmp_path / "quality.csv"
    with pytest.raises(AuditTableError, match=r"quality\.csv: not found$") as error:
        read_audit_table(path, QUALITY_KEYS)
    assert (error.value.path, error.value.problem) == (path, "not found")
    path.write_text("index,given_label\n1,2\n")
    with pytest.raises(AuditTableError, match=r"quality\.csv: missing column\(s\) label_quality$"):
        read_audit_table(path, QUALITY_KEYS)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AuditTableError, match=r"quality\.csv: unreadable"):
        read_audit_table(path, ISSUE_KEYS)

    _, labels, index, quality = digits
    table = pd.DataFrame({"index": quality.index, "given_label": labels[:6], "label_quality": quality.to_numpy()})
    assert check_same_digits(index, labels, table, path).loc[13] == 0.01
    with pytest.raises(OtherDigits, match=r"quality\.csv: made for other training digits \(training digit 15 is not in it\)$") as error:
        check_same_digits(index, labels, table.iloc[:5], path)
    assert error.value.difference == "training digit 15 is not in it"
    relabelled = table.assign(given_label=(table["given_label"] + 1) % 10)
    with pytest.raises(OtherDigits, match="its given labels differ"):
        check_same_digits(index, labels, relabelled, path)
    with pytest.raises(AuditTableError, match=r"quality\.csv: a digit appears twice$"):
        check_same_digits(index, labels, pd.concat([table, table.iloc[:1]]), path)
