"""A review queue's folder as `mnist-dvc review` reads it (mnist_dvc/app/queue_folder.py): a real queue
written by the stages' own writer is read whole and in rank order; every bad value, bad picture
name and missing file is one line naming the row, and a missing queue names the command that makes it."""

import csv
import shutil

import numpy as np
import pytest
from review_queues import write_queue_folder

from mnist_dvc.app.queue_folder import read_queue
from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split


@pytest.fixture(scope="module")
def queue(tmp_path_factory, mnist_mirror, mnist_train):
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return write_queue_folder(tmp_path_factory.mktemp("queue"), "test", 6, images, labels, *mnist_train)


def edited(queue, tmp_path, change):
    """A copy of `queue` whose queue.csv rows (lists of fields, the header first) `change` edits in place."""
    folder = shutil.copytree(queue, tmp_path / "queue")
    with open(folder / "queue.csv", newline="") as file:
        rows = list(csv.reader(file))
    change(rows)
    with open(folder / "queue.csv", "w", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows(rows)
    return folder


def test_a_written_queue_is_read_in_rank_order(queue, mnist_mirror):
    read = read_queue(queue)
    assert [digit.rank for digit in read.digits] == [1, 2, 3, 4, 5, 6]
    _, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    for digit in read.digits:
        assert digit.split == "test" and digit.given_label == labels[digit.index]
        assert len(digit.probs) == 10 and sum(digit.probs) == pytest.approx(1, abs=1e-5)
        assert digit.suggested_label == int(np.argmax(digit.probs))
        assert digit.digit == queue / "digits" / f"{digit.index}.png" and digit.explained.is_file()
        assert read.find("test", digit.index) is digit
    assert read.find("train", read.digits[0].index) is None and read.find("test", 9999) is None


def test_rows_are_taken_in_rank_order_whatever_their_order_in_the_file(queue, tmp_path):
    folder = edited(queue, tmp_path, lambda rows: rows.__setitem__(slice(1, None), rows[:0:-1]))
    assert [digit.rank for digit in read_queue(folder).digits] == [1, 2, 3, 4, 5, 6]


def test_a_queue_without_explanations_has_none(queue, tmp_path):
    def no_explanations(rows):
        column = rows[0].index("explained")
        for row in rows[1:]:
            row[column] = ""

    assert all(digit.explained is None for digit in read_queue(edited(queue, tmp_path, no_explanations)).digits)


def set_cell(column: str, value: str, row: int = 1):
    def change(rows):
        rows[row][rows[0].index(column)] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (set_cell("split", "val"), "row 2: split = 'val': expected train or test"),
    (set_cell("index", "10000"), "row 2: index = '10000': expected a whole number from 0 to 9999"),
    (set_cell("rank", "0", row=3), "row 4: rank = '0': expected a whole number from 1 to 60000"),
    (set_cell("given_label", "11"), "row 2: given_label = '11': expected a whole number from 0 to 9"),
    (set_cell("suggested_label", "x"), "row 2: suggested_label = 'x': expected a whole number from 0 to 9"),
    (set_cell("label_quality", "1.5"), "row 2: label_quality = '1.5': expected a number from 0 to 1"),
    (set_cell("p3", "nan"), "row 2: p3 = 'nan': expected a number from 0 to 1"),
    (set_cell("entropy", "-1"), "row 2: entropy = '-1': expected a number from 0"),
    (set_cell("entropy", "inf"), "row 2: entropy = 'inf': expected a number from 0"),
    (set_cell("flagged", "yes"), "row 2: flagged = 'yes': expected True or False"),
    (set_cell("digit", "../../secret.png"), "row 2: digit = '../../secret.png': expected a picture's path inside the queue's folder"),
    (set_cell("explained", "/etc/passwd"), "row 2: explained = '/etc/passwd': expected a picture's path inside the queue's folder"),
    (set_cell("digit", "digits/nowhere.png"), "row 2: digit = 'digits/nowhere.png': "),
    (lambda rows: rows.append(list(rows[1])), "row 8: rank 1 again (first on row 2)"),
    (lambda rows: rows.append(["99", *rows[1][1:]]), "again (first on row 2)"),
    (lambda rows: rows[2].append("extra"), "row 3: 22 fields, but the header names 21"),
    (lambda rows: [row.pop(8) for row in rows], "header lacks entropy"),  # the ninth column
    (lambda rows: rows.clear(), "empty; it needs at least the header rank,split,index"),
])
def test_each_problem_is_one_line_naming_the_row(queue, tmp_path, change, message):
    folder = edited(queue, tmp_path, change)
    with pytest.raises(UserError) as error:
        read_queue(folder)
    assert str(error.value).startswith(f"{folder / 'queue.csv'}: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_picture_names_the_command_that_makes_it(queue, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = shutil.copytree(queue, tmp_path / paths.AUDIT_REVIEW / "test")
    name = sorted((folder / "explained").iterdir())[0]
    name.unlink()
    with pytest.raises(UserError, match=f"{name.relative_to(tmp_path)} is missing; `dvc repro audit/dvc.yaml` makes it"):
        read_queue(paths.AUDIT_REVIEW / "test")


@pytest.mark.parametrize(("folder", "command"), [
    (paths.REVIEW_QUEUE_TEST, "`dvc repro` makes it (stage ambiguous)"),
    (paths.AUDIT_REVIEW / "train", "`dvc repro audit/dvc.yaml` makes it (stage audit)"),
    ("elsewhere", "a queue is made by `dvc repro` (data/ambiguous/review) or `dvc repro audit/dvc.yaml` "
                  "(data/audit/review/train, data/audit/review/test)"),
])
def test_a_missing_queue_names_the_command_that_makes_it(tmp_path, monkeypatch, folder, command):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as error:
        read_queue(folder)
    assert str(error.value) == f"{folder}/queue.csv: not found; {command}"
