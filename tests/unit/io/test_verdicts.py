"""labels/review.csv (mnist_dvc/io/verdicts.py): every bad row named by its row and value, one verdict
per digit recorded by replacing the whole file, sorted rows, the merge rule and its conflicts, and
the labels that verdicts give."""

import os

import numpy as np
import pandas as pd
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io import verdicts

HEADER = ",".join(verdicts.COLUMNS)


def write(path, *rows: str):
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_an_absent_file_holds_no_verdicts(tmp_path):
    table = verdicts.read_verdicts(tmp_path / "review.csv")
    assert list(table.columns) == list(verdicts.COLUMNS) and len(table) == 0


def test_a_good_file_is_read_with_its_types(tmp_path):
    path = write(tmp_path / "review.csv", "test,12,5,wrong,3,2026-12-06T10:01:02Z", "train,59999,0,ambiguous,,2026-12-06T10:01:03Z",
                 "test,0,7,right,,2026-12-06T10:01:04Z")
    table = verdicts.read_verdicts(path)
    assert table["index"].tolist() == [12, 59999, 0] and table["given_label"].tolist() == [5, 0, 7]
    assert table["corrected_label"].iloc[0] == 3 and table["corrected_label"].iloc[1:].isna().all()
    assert table["verdict"].tolist() == ["wrong", "ambiguous", "right"]


@pytest.mark.parametrize(("rows", "message"), [
    (["test,1,5,right,,t"], None),  # the control: this row is fine
    (["val,1,5,right,,t"], "row 2: split = 'val': expected train or test"),
    (["test,10000,5,right,,t"], "row 2: index = '10000': expected a whole number from 0 to 9999"),
    (["train,-1,5,right,,t"], "row 2: index = '-1': expected a whole number from 0 to 59999"),
    (["test,1.5,5,right,,t"], "row 2: index = '1.5': expected a whole number"),
    (["test,1,10,right,,t"], "row 2: given_label = '10': expected a whole number from 0 to 9"),
    (["test,1,5,right,,t", "test,2,5,maybe,,t"], "row 3: verdict = 'maybe': expected one of right, wrong, ambiguous"),
    (["test,1,5,wrong,,t"], "row 2: corrected_label = '': expected a whole number from 0 to 9"),
    (["test,1,5,wrong,12,t"], "row 2: corrected_label = '12': expected a whole number from 0 to 9"),
    (["test,1,5,wrong,5,t"], "row 2: corrected_label = 5 is the given label; a label that is right takes the verdict `right`"),
    (["test,1,5,ambiguous,3,t"], "row 2: corrected_label = '3': only a `wrong` verdict has one"),
    (["test,1,5,right,,t", "train,1,5,right,,t", "test,1,5,wrong,3,t"], "row 4: test digit 1 again (first on row 2); one verdict per digit"),
    (["test,1,5,right,,t,late"], "row 2: 7 fields: expected 6"),
    (["test,1,5,right"], "row 2: 4 fields: expected 6"),
])
def test_each_bad_row_is_named_by_its_row_and_value(tmp_path, rows, message):
    path = write(tmp_path / "review.csv", *rows)
    if message is None:
        assert len(verdicts.read_verdicts(path)) == 1
        return
    with pytest.raises(UserError) as error:
        verdicts.read_verdicts(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty; it needs at least the header split,index,given_label,verdict,corrected_label,time"),
    (b"split,index,label,verdict\ntest,1,5,right\n", "header 'split,index,label,verdict': expected split,index,given_label"),
    (b"\xff\xfe\x00\x01 not text", "not a readable CSV file"),
])
def test_a_file_that_is_not_a_verdicts_table_is_one_line(tmp_path, content, message):
    path = tmp_path / "review.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        verdicts.read_verdicts(path)
    assert "\n" not in str(error.value)


def test_record_adds_replaces_and_keeps_the_rows_sorted(tmp_path):
    path = tmp_path / "labels" / "review.csv"  # its folder is made too
    verdicts.record(path, "train", 7, 1, "ambiguous", None, "2026-12-06T10:00:00Z")
    verdicts.record(path, "test", 40, 4, "wrong", 9, "2026-12-06T10:00:01Z")
    verdicts.record(path, "test", 3, 8, "right", None, "2026-12-06T10:00:02Z")
    table = verdicts.record(path, "test", 40, 4, "right", None, "2026-12-06T10:00:03Z")  # a second verdict replaces the first
    assert path.read_text() == (f"{HEADER}\ntest,3,8,right,,2026-12-06T10:00:02Z\ntest,40,4,right,,2026-12-06T10:00:03Z\n"
                                "train,7,1,ambiguous,,2026-12-06T10:00:00Z\n")
    assert table.equals(verdicts.read_verdicts(path))


def test_record_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "review.csv"
    verdicts.record(path, "test", 1, 5, "right", None, "t1")
    before = os.stat(path).st_ino
    verdicts.record(path, "test", 2, 5, "wrong", 6, "t2")
    assert os.stat(path).st_ino != before  # a new file renamed into place, never the old one rewritten
    assert [entry.name for entry in tmp_path.iterdir()] == ["review.csv"]


def test_record_on_a_broken_file_changes_nothing(tmp_path):
    path = write(tmp_path / "review.csv", "test,1,5,maybe,,t")
    before = path.read_bytes()
    with pytest.raises(UserError, match="row 2: verdict = 'maybe'"):
        verdicts.record(path, "test", 2, 5, "right", None, "t")
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def table(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(verdicts.COLUMNS))
    return frame.astype({"index": "Int64", "given_label": "Int64", "corrected_label": "Int64"}) if rows else verdicts.empty()


def test_merge_keeps_single_verdicts_and_the_later_of_two_alike():
    mine = table(("test", 1, 5, "right", None, "2026-12-06T10:00:00Z"), ("test", 2, 3, "wrong", 8, "2026-12-06T10:00:00Z"))
    theirs = table(("test", 2, 3, "wrong", 8, "2026-12-06T11:00:00Z"), ("train", 9, 0, "ambiguous", None, "2026-12-06T09:00:00Z"))
    merged, conflicts = verdicts.merge(mine, theirs)
    assert merged.astype(object).where(merged.notna(), None).values.tolist() == [
        ["test", 1, 5, "right", None, "2026-12-06T10:00:00Z"],
        ["test", 2, 3, "wrong", 8, "2026-12-06T11:00:00Z"],
        ["train", 9, 0, "ambiguous", None, "2026-12-06T09:00:00Z"],
    ]
    assert len(conflicts) == 0 and list(conflicts.columns) == ["split", "index", "given_label", "mine", "theirs"]


def test_merge_makes_a_disagreement_ambiguous_and_lists_it_with_both_verdicts():
    mine = table(("test", 2, 3, "wrong", 8, "2026-12-06T10:00:00Z"), ("test", 4, 1, "right", None, "2026-12-06T12:00:00Z"),
                 ("test", 5, 7, "wrong", 1, "2026-12-06T10:00:00Z"))
    theirs = table(("test", 2, 3, "right", None, "2026-12-06T11:00:00Z"), ("test", 4, 1, "wrong", 7, "2026-12-06T10:00:00Z"),
                   ("test", 5, 7, "wrong", 2, "2026-12-06T10:00:00Z"))
    merged, conflicts = verdicts.merge(mine, theirs)
    assert merged["verdict"].tolist() == ["ambiguous"] * 3 and merged["corrected_label"].isna().all()
    assert merged["time"].tolist() == ["2026-12-06T11:00:00Z", "2026-12-06T12:00:00Z", "2026-12-06T10:00:00Z"]
    assert conflicts.values.tolist() == [["test", 2, 3, "wrong: 8", "right"], ["test", 4, 1, "right", "wrong: 7"],
                                         ["test", 5, 7, "wrong: 1", "wrong: 2"]]


def test_a_merged_table_is_written_and_read_back_as_it_was(tmp_path):
    merged, _ = verdicts.merge(table(("train", 3, 2, "wrong", 7, "a")), table(("test", 3, 2, "right", None, "b")))
    verdicts.write_verdicts(tmp_path / "review.csv", merged)
    assert (tmp_path / "review.csv").read_text() == f"{HEADER}\ntest,3,2,right,,b\ntrain,3,2,wrong,7,a\n"
    merged, conflicts = verdicts.merge(verdicts.empty(), verdicts.empty())
    assert len(merged) == 0 and len(conflicts) == 0


def test_given_labels_are_checked_against_the_official_ones(tmp_path):
    official = np.array([5, 0, 4, 1])
    verdicts.check_given_labels(table(("train", 0, 5, "right", None, "t")), "train", official, "review.csv")
    verdicts.check_given_labels(table(("test", 0, 9, "right", None, "t")), "train", official, "review.csv")  # another split
    with pytest.raises(UserError, match=r"review.csv: row 2: train digit 2: given_label = 7, but the official label is 4"):
        verdicts.check_given_labels(table(("train", 2, 7, "right", None, "t")), "train", official, "review.csv")
    with pytest.raises(UserError, match=r"row 2: train digit 4: no such digit; the official train file holds 4"):
        verdicts.check_given_labels(table(("train", 4, 7, "right", None, "t")), "train", official, "review.csv")


def test_reviewed_labels_correct_blank_and_count_the_digits_they_touch():
    labels = np.array([3, 5, 5, 1, 7])
    index = np.array([10, 11, 11, 12, 13])  # a distorted copy shares its source's index
    given = table(("train", 11, 5, "wrong", 6, "t"), ("train", 12, 1, "ambiguous", None, "t"), ("train", 13, 7, "right", None, "t"),
                  ("train", 99, 2, "wrong", 3, "t"), ("test", 10, 3, "wrong", 8, "t"))
    reviewed, used = verdicts.reviewed_labels(labels, index, given, "train")
    assert reviewed.tolist() == [3, 6, 6, verdicts.NO_LABEL, 7] and used == 3
    assert labels.tolist() == [3, 5, 5, 1, 7]  # the input is left as it was
