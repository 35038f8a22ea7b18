"""Kaggle Digit Recognizer CSV files: real MNIST digits survive a round trip with and without labels;
every malformed file stops with one line naming the file and, for a bad row, its line number; the
submission file is exactly what Kaggle expects."""

import numpy as np
import pandas as pd
import pytest

from mnist_dvc.digits.kaggle_csv import PIXELS, read_digits_csv, write_submission
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split


@pytest.fixture(scope="module")
def digits(mnist_mirror) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return images[:300], labels[:300]


def kaggle_csv(path, images: np.ndarray, labels: np.ndarray | None = None):
    """Writes digits the way Kaggle's train.csv (with labels) and test.csv (without) are laid out."""
    frame = pd.DataFrame(images.reshape(len(images), -1), columns=PIXELS)
    if labels is not None:
        frame.insert(0, "label", labels)
    frame.to_csv(path, index=False)
    return path


def error_line(path) -> str:
    with pytest.raises(UserError) as caught:
        read_digits_csv(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


# --- Reading good files ------------------------------------------------------------------------


def test_round_trip_with_labels(tmp_path, digits):
    images, labels = digits
    read_images, read_labels = read_digits_csv(kaggle_csv(tmp_path / "train.csv", images, labels))
    assert read_images.dtype == np.uint8 and read_images.shape == (300, 28, 28)
    assert np.array_equal(read_images, images)
    assert read_labels.dtype == np.uint8 and np.array_equal(read_labels, labels)


def test_round_trip_without_labels(tmp_path, digits):
    images, _ = digits
    read_images, read_labels = read_digits_csv(kaggle_csv(tmp_path / "test.csv", images))
    assert np.array_equal(read_images, images) and read_labels is None


def test_windows_line_ends_and_no_final_newline(tmp_path, digits):
    images, labels = digits
    text = kaggle_csv(tmp_path / "train.csv", images[:3], labels[:3]).read_text()
    path = tmp_path / "windows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.rstrip("\n").replace("\n", "\r\n").encode())  # as Excel saves it
    read_images, read_labels = read_digits_csv(path)
    assert np.array_equal(read_images, images[:3]) and np.array_equal(read_labels, labels[:3])


# --- Malformed files ---------------------------------------------------------------------------


@pytest.fixture
def sample(tmp_path, digits):
    """`sample(edit)`: a five-digit train.csv whose data lines (lines 2-6) went through `edit`, a
    function from the list of lines, each a list of fields, to the lines to write."""
    images, labels = digits

    def make(edit) -> str:
        lines = kaggle_csv(tmp_path / "clean.csv", images[:5], labels[:5]).read_text().splitlines()
        rows = edit([line.split(",") for line in lines[1:]])
        path = tmp_path / "train.csv"
        path.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")
        return error_line(path)

    return make


def set_field(line: int, column: int, value: str):
    """An edit that puts `value` in field `column` (0 is the label) of line `line` of the file."""
    def edit(rows):
        rows[line - 2][column] = value
        return rows
    return edit


@pytest.mark.parametrize("line, column, value, expected", [
    (4, 8, "", "line 4: missing value in column pixel7"),
    (4, 8, "abc", "line 4: pixel7 is 'abc', not a whole number"),
    (3, 300, "3.5", "line 3: pixel299 is '3.5', not a whole number"),
    (6, 785 - 1, "NA", "line 6: pixel783 is 'NA', not a whole number"),
    (5, 1, "256", "line 5: pixel0 is 256, outside 0-255"),
    (2, 100, "-1", "line 2: pixel99 is -1, outside 0-255"),
    (4, 0, "10", "line 4: label is 10, outside 0-9"),
    (4, 0, "seven", "line 4: label is 'seven', not a whole number"),
])
def test_bad_value_names_its_line_and_column(sample, line, column, value, expected):
    assert sample(set_field(line, column, value)) == expected


def test_wrong_number_of_fields(sample):
    assert sample(lambda rows: [*rows[:2], rows[2] + ["0"], *rows[3:]]) == "line 4: 786 fields, expected 785"
    assert sample(lambda rows: [*rows[:3], rows[3][:-1], *rows[4:]]) == "line 5: 784 fields, expected 785"
    assert sample(lambda rows: [*rows[:1], [""], *rows[1:]]) == "line 3: empty line"


def test_first_bad_line_is_reported(sample):
    """A later line's bad text must not hide an earlier out-of-range value, in any column."""
    def two_problems(same_column: bool):
        def edit(rows):
            rows[4][10] = "x"  # line 6
            rows[1][10 if same_column else 20] = "300"  # line 3
            return rows
        return edit

    assert sample(two_problems(same_column=True)) == "line 3: pixel9 is 300, outside 0-255"
    assert sample(two_problems(same_column=False)) == "line 3: pixel19 is 300, outside 0-255"


def test_bad_header(tmp_path, digits):
    images, labels = digits
    text = kaggle_csv(tmp_path / "train.csv", images[:2], labels[:2]).read_text()
    path = tmp_path / "bad.csv"
    path.write_text(text.replace("pixel5,", "pixl5,", 1))
    assert error_line(path) == "line 1: header column 7 is 'pixl5', expected 'pixel5'"
    path.write_text(text.replace("label,", "", 1))  # a test.csv header over train.csv rows
    assert error_line(path) == "line 2: 785 fields, expected 784"
    path.write_text("id," + text.split("\n", 1)[0] + "\n")
    assert error_line(path).startswith("line 1: header has 786 columns")
    path.write_text("not,a,digits,file\n1,2,3,4\n")
    assert error_line(path).startswith("line 1: header has 4 columns")


def test_header_only_empty_and_missing_files(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(",".join(PIXELS) + "\n")
    assert error_line(path) == "no digits: the file holds only its header"
    path.write_text("")
    assert error_line(path) == "empty file"
    path.write_text("\n\n")
    assert error_line(path) == "empty file"
    assert error_line(tmp_path / "gone.csv") == "not found"


# --- Writing the submission --------------------------------------------------------------------


def test_submission_format_is_exact(tmp_path):
    path = tmp_path / "out" / "submission.csv"
    write_submission(path, np.array([7, 2, 1, 0], dtype=np.int64))
    assert path.read_bytes() == b"ImageId,Label\n1,7\n2,2\n3,1\n4,0\n"
    write_submission(path, np.array([9], dtype=np.uint8))  # replaces the old file whole
    assert path.read_text() == "ImageId,Label\n1,9\n"
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]  # no temporary left behind


def test_submission_rejects_non_integer_predictions(tmp_path):
    with pytest.raises(ValueError):
        write_submission(tmp_path / "submission.csv", np.array([0.5, 1.0]))
    assert not (tmp_path / "submission.csv").exists()
