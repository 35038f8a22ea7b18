"""Kaggle's "Digit Recognizer" CSV files: digits in (train.csv, test.csv) and predictions out.

Each row is one digit in MNIST layout already: 784 grey values 0-255 in columns pixel0..pixel783,
row by row, after a `label` column in train.csv. A hand-edited or half-downloaded file must stop
with one line that names the file and the line to fix, never with a pandas traceback or, worse, a
digit silently shifted by a missing comma.

Reading checks the whole file before parsing it: the header first, then the number of fields on
every line (which pandas would silently pad), then pandas parses the numbers and any line it finds
a bad value on is re-read to say which value is wrong and why. The file is read with quoting off,
so that line N of the file is always row N - 1.
"""

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_dvc import IMAGE_SIDE
from mnist_dvc.errors import UserError, read_user_file
from mnist_dvc.io.atomic import write_csv

PIXELS = [f"pixel{i}" for i in range(IMAGE_SIDE * IMAGE_SIDE)]
LABEL = "label"
_HIGHEST = {LABEL: 9}  # largest value allowed in a column; 255 for every pixel
# ASCII classes on purpose: pandas may match with pyarrow's RE2, where \d and \s are ASCII only.
_WHOLE = re.compile(r"[ \t]*\+?[0-9]+[ \t]*")
_NEGATIVE = re.compile(r"[ \t]*-[0-9]+[ \t]*")


def read_digits_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """The digits of a Kaggle CSV file as uint8 (N, 28, 28), and their labels as uint8 (N,) when the
    file has a `label` column (train.csv), else None (test.csv).

    Raises `UserError`, one line naming the file, for a missing, unreadable or empty file, a header
    other than `pixel0,...,pixel783` with or without `label,` before it, no rows, and for the first
    bad row: its line number in the file (the header is line 1) and what is wrong: the number of
    fields, a missing value, a value that is not a whole number, or one outside 0-255 (labels 0-9).
    """
    path = Path(path)
    data = read_user_file(path)
    if not data.strip():
        raise UserError(f"{path}: empty file")
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    header = lines[0].rstrip(b"\r").decode("utf-8", errors="replace").split(",")
    if header not in (PIXELS, [LABEL, *PIXELS]):
        raise UserError(f"{path}: line 1: {_header_problem(header)}")
    if len(lines) == 1:
        raise UserError(f"{path}: no digits: the file holds only its header")
    for number, line in enumerate(lines[1:], start=2):
        fields = line.count(b",") + 1
        if fields != len(header):
            problem = "empty line" if not line.strip() else f"{fields} fields, expected {len(header)}"
            raise UserError(f"{path}: line {number}: {problem}")
    frame = pd.read_csv(io.BytesIO(data), quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""],
                        skip_blank_lines=False, encoding="utf-8-sig", low_memory=False)  # one dtype per column
    bad_rows = _bad_rows(frame, data)
    if bad_rows.any():
        row = int(np.argmax(bad_rows))
        raise UserError(f"{path}: line {row + 2}: {_row_problem(header, lines[row + 1])}")
    values = frame.to_numpy(dtype=np.uint8)
    labels = values[:, 0] if header[0] == LABEL else None
    return values[:, -len(PIXELS) :].reshape(-1, IMAGE_SIDE, IMAGE_SIDE), labels


def write_submission(path: str | os.PathLike, predictions: np.ndarray) -> None:
    """Writes Kaggle's submission file, atomically: header `ImageId,Label`, then one line per digit,
    ids counting from 1 in the order of `predictions` (integer, shape (N,)), Unix line ends."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 1 or not np.issubdtype(predictions.dtype, np.integer):
        raise ValueError(f"expected integer predictions of shape (N,), got {predictions.dtype} {predictions.shape}")
    write_csv(path, pd.DataFrame({"ImageId": np.arange(1, len(predictions) + 1), "Label": predictions}))


def _header_problem(header: list[str]) -> str:
    """What is wrong with a header line, for the error message."""
    expected = [LABEL, *PIXELS] if header[:1] == [LABEL] else PIXELS
    if len(header) != len(expected):
        return (f"header has {len(header)} columns; expected pixel0,...,pixel783 (784 columns), "
                f"optionally after label (785)")
    column = next(i for i, (found, wanted) in enumerate(zip(header, expected)) if found != wanted)
    return f"header column {column + 1} is {header[column][:40]!r}, expected {expected[column]!r}"


def _bad_rows(frame: pd.DataFrame, data: bytes) -> np.ndarray:
    """bool (N,): rows holding a value that is missing, not a whole number, or out of range.

    Columns pandas parsed as integers only need their range checked; any other column holds at
    least one bad value, so it is read again as text to find which rows.
    """
    highest = np.array([_HIGHEST.get(name, 255) for name in frame.columns])
    numeric = np.array([pd.api.types.is_integer_dtype(dtype) for dtype in frame.dtypes])
    values = frame.loc[:, numeric].to_numpy()
    bad = ((values < 0) | (values > highest[numeric])).any(axis=1)
    others = frame.columns[~numeric]
    if len(others):
        text = pd.read_csv(io.BytesIO(data), usecols=list(others), dtype=str, quoting=csv.QUOTE_NONE,
                           keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig")
        for name in others:
            whole = text[name].str.fullmatch(_WHOLE.pattern)
            in_range = pd.to_numeric(text[name].where(whole), errors="coerce") <= _HIGHEST.get(name, 255)
            bad |= ~(whole & in_range).to_numpy(dtype=bool)
    return bad


def _row_problem(header: list[str], line: bytes) -> str:
    """What is wrong with the first bad value on a line that has the right number of fields."""
    for name, field in zip(header, line.rstrip(b"\r").decode("utf-8", errors="replace").split(",")):
        highest = _HIGHEST.get(name, 255)
        shown = field.strip()
        if not shown:
            return f"missing value in column {name}"
        if _NEGATIVE.fullmatch(field) or (_WHOLE.fullmatch(field) and int(field) > highest):
            return f"{name} is {shown}, outside 0-{highest}"
        if not _WHOLE.fullmatch(field):
            return f"{name} is {shown[:40]!r}, not a whole number"
    raise AssertionError("a row flagged as bad holds no bad value")
