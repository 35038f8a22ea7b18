"""labels/review.csv: a person's verdicts on MNIST labels, the one file `mnist-dvc review` writes and
the preprocess stage reads.

One row per digit, sorted by split and index so that git diffs stay small:

    split,index,given_label,verdict,corrected_label,time
    test,1234,5,wrong,3,2026-12-06T10:01:02Z

- `split`: `train` or `test`; `index`: the digit's place in that official MNIST file;
- `given_label`: the official label the reviewer saw (checked against the official file, so a verdict
  can never land on another digit);
- `verdict`: `right` (the label is right), `wrong` (it should be `corrected_label`, another digit 0-9)
  or `ambiguous` (unreadable: no single label is right);
- `time`: when the verdict was given, UTC, ISO 8601.

Every write replaces the whole file atomically, so a review stopped at any moment loses at most the
verdict being written. Any problem with the file is one `UserError` naming the file, the row (as a
spreadsheet numbers it: the header is row 1) and the value.
"""

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_dvc import NUM_CLASSES, TEST_SIZE, TRAIN_SIZE
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import write_csv

COLUMNS = ("split", "index", "given_label", "verdict", "corrected_label", "time")
SPLIT_SIZES = {"train": TRAIN_SIZE, "test": TEST_SIZE}
VERDICTS = ("right", "wrong", "ambiguous")
NO_LABEL = -1  # `reviewed_labels`' label for a digit judged ambiguous


def empty() -> pd.DataFrame:
    """A verdict table with no rows, typed as `read_verdicts` returns them."""
    return pd.DataFrame({column: pd.Series(dtype=object if column in ("split", "verdict", "time") else "Int64")
                         for column in COLUMNS})


def _digit(text: str, path: Path, row: int, column: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit() and low <= int(text) < high):
        raise UserError(f"{path}: row {row}: {column} = {text!r}: expected a whole number from {low} to {high - 1}")
    return int(text)


def read_verdicts(path: str | Path) -> pd.DataFrame:
    """The verdicts of `path`, checked row by row; an absent file holds none. Columns as `COLUMNS`,
    `corrected_label` missing (<NA>) unless the verdict is `wrong`."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as file:
            lines = list(csv.reader(file))
    except FileNotFoundError:
        return empty()
    except (csv.Error, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not a readable CSV file: {error}") from None
    if not lines:
        raise UserError(f"{path}: empty; it needs at least the header {','.join(COLUMNS)}")
    if tuple(lines[0]) != COLUMNS:
        raise UserError(f"{path}: header {','.join(lines[0])!r}: expected {','.join(COLUMNS)}")
    for row, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(COLUMNS):
            raise UserError(f"{path}: row {row}: {len(fields)} fields: expected {len(COLUMNS)} ({','.join(COLUMNS)})")
    rows, seen = [], {}
    for row, values in enumerate(lines[1:], start=2):
        split, index, given, verdict, corrected, time = (value.strip() for value in values)
        if split not in SPLIT_SIZES:
            raise UserError(f"{path}: row {row}: split = {split!r}: expected train or test")
        index = _digit(index, path, row, "index", 0, SPLIT_SIZES[split])
        given = _digit(given, path, row, "given_label", 0, NUM_CLASSES)
        if verdict not in VERDICTS:
            raise UserError(f"{path}: row {row}: verdict = {verdict!r}: expected one of {', '.join(VERDICTS)}")
        if verdict == "wrong":
            corrected = _digit(corrected, path, row, "corrected_label", 0, NUM_CLASSES)
            if corrected == given:
                raise UserError(f"{path}: row {row}: corrected_label = {corrected} is the given label; "
                                f"a label that is right takes the verdict `right`")
        elif corrected:
            raise UserError(f"{path}: row {row}: corrected_label = {corrected!r}: only a `wrong` verdict has one")
        else:
            corrected = None
        if (split, index) in seen:
            raise UserError(f"{path}: row {row}: {split} digit {index} again (first on row {seen[split, index]}); "
                            f"one verdict per digit")
        seen[split, index] = row
        rows.append((split, index, given, verdict, corrected, time))
    table = pd.DataFrame(rows, columns=list(COLUMNS)) if rows else empty()
    return table.astype({"index": "Int64", "given_label": "Int64", "corrected_label": "Int64"})


def check_given_labels(verdicts: pd.DataFrame, split: str, official_labels: np.ndarray, path: str | Path) -> None:
    """`UserError` when a verdict of `split` names a digit beyond `official_labels` or a given label the
    official file does not hold there: the verdict was made on other data, and would land on another digit."""
    mine = verdicts[verdicts["split"] == split]
    for row, index, given in zip(mine.index + 2, mine["index"], mine["given_label"]):  # the file's row: header is 1
        if index >= len(official_labels):
            raise UserError(f"{path}: row {row}: {split} digit {index}: no such digit; the official {split} file holds {len(official_labels)}")
        if int(official_labels[index]) != given:
            raise UserError(f"{path}: row {row}: {split} digit {index}: given_label = {given}, but the official label is "
                            f"{int(official_labels[index])}; the verdict was made on other data")


def reviewed_labels(labels: np.ndarray, index: np.ndarray, verdicts: pd.DataFrame, split: str) -> tuple[np.ndarray, int]:
    """The labels of the digits at official places `index` after `split`'s verdicts: corrected where
    judged wrong, `NO_LABEL` where judged ambiguous; and how many verdicts touched these digits."""
    mine = verdicts[verdicts["split"] == split]
    where = pd.Series(np.arange(len(index)), index=np.asarray(index))
    reviewed = np.asarray(labels).astype(np.int64).copy()
    used = 0
    for digit, verdict, corrected in zip(mine["index"], mine["verdict"], mine["corrected_label"]):
        if digit not in where.index:
            continue
        used += 1
        positions = where.loc[[digit]].to_numpy()  # a distorted copy shares its source's index
        if verdict == "wrong":
            reviewed[positions] = corrected
        elif verdict == "ambiguous":
            reviewed[positions] = NO_LABEL
    return reviewed, used


def write_verdicts(path: str | Path, verdicts: pd.DataFrame) -> None:
    """Replaces `path` with `verdicts`, one row per digit, sorted by split and index, atomically."""
    table = verdicts.sort_values(["split", "index"], kind="stable").reset_index(drop=True)
    write_csv(path, table.loc[:, list(COLUMNS)])


def record(path: str | Path, split: str, index: int, given_label: int, verdict: str, corrected_label: int | None, time: str) -> pd.DataFrame:
    """Adds one verdict to `path` (replacing an earlier one for the same digit) and returns the file's verdicts."""
    row = pd.DataFrame([(split, index, given_label, verdict, corrected_label, time)], columns=list(COLUMNS))
    row = row.astype({"index": "Int64", "given_label": "Int64", "corrected_label": "Int64"})
    verdicts = read_verdicts(path)
    kept = verdicts[~((verdicts["split"] == split) & (verdicts["index"] == index))]
    updated = pd.concat([kept, row], ignore_index=True) if len(kept) else row
    write_verdicts(path, updated)
    return read_verdicts(path)


def merge(mine: pd.DataFrame, theirs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two reviewers' verdicts as one table, and the conflicts. The rule: a digit judged by one reviewer
    keeps that verdict; judged alike by both (same verdict and corrected label), it keeps the later row;
    judged differently, it becomes `ambiguous` (two careful people disagree, so no single label is
    right), timed by the later verdict, and is listed among the conflicts with both verdicts."""
    def by_digit(table: pd.DataFrame) -> dict:
        return {(row[0], int(row[1])): row for row in table.astype(object).where(table.notna(), None).itertuples(index=False, name=None)}

    a_rows, b_rows = by_digit(mine), by_digit(theirs)
    rows, conflicts = [], []
    for digit in sorted(a_rows.keys() | b_rows.keys()):
        a, b = a_rows.get(digit), b_rows.get(digit)
        if a is None or b is None:
            rows.append(a or b)
        elif a[3:5] == b[3:5]:
            rows.append(max(a, b, key=lambda row: row[5]))
        else:
            rows.append((*digit, a[2], "ambiguous", None, max(a[5], b[5])))
            conflicts.append((*digit, a[2], _say(a), _say(b)))
    merged = pd.DataFrame(rows, columns=list(COLUMNS)).astype({"index": "Int64", "given_label": "Int64", "corrected_label": "Int64"})
    return merged if rows else empty(), pd.DataFrame(conflicts, columns=["split", "index", "given_label", "mine", "theirs"])


def _say(row: tuple) -> str:
    """`wrong: 3`, `right` or `ambiguous`: one reviewer's verdict in a conflict list."""
    return f"wrong: {row[4]}" if row[3] == "wrong" else row[3]
