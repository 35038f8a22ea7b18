"""A review queue's folder as `mnist-dvc review` reads it: queue.csv checked row by row, and the
pictures it names found inside the folder.

The stages that write a queue (`ambiguous` for data/ambiguous/review, `audit` for
data/audit/review/<split>) write it with `mnist_dvc.analysis.review_queue.write_queue`, whose
docstring defines the folder and the columns; this module reads them by those names.

The page trusts nothing it has not checked here: every number is in its range, every digit is in
the queue once, and every picture is a file inside the folder (a name such as ../../.ssh/id_rsa is
refused, so the page can serve only the queue's own pictures). Any problem is one `UserError`
naming the file, the row (as a spreadsheet numbers it: the header is row 1) and the value; a
missing queue names the command that makes it.
"""

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mnist_dvc import NUM_CLASSES, TRAIN_SIZE
from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.queue_format import PROB_COLUMNS, QUEUE_COLUMNS, QUEUE_CSV
from mnist_dvc.io.verdicts import SPLIT_SIZES


@dataclass(frozen=True)
class QueuedDigit:
    """One row of queue.csv, checked; `digit` and `explained` are paths inside the queue's folder
    (`explained` None when the queue has no explanation for it)."""

    rank: int
    split: str
    index: int
    given_label: int
    suggested_label: int
    label_quality: float
    flagged: bool
    margin: float
    entropy: float
    probs: tuple[float, ...]
    digit: Path
    explained: Path | None


@dataclass(frozen=True)
class QueueFolder:
    """A queue's folder, its digits in review order (rank 1 first), and the same digits by (split, index)."""

    folder: Path
    digits: tuple[QueuedDigit, ...]
    places: dict[tuple[str, int], QueuedDigit]

    def find(self, split: str, index: int) -> QueuedDigit | None:
        """The queued digit at official place `index` of `split`, or None when the queue does not hold it."""
        return self.places.get((split, index))


def made_by(folder: Path) -> str:
    """The command that makes the queue in `folder`, as the end of an error message."""
    here = Path(os.path.abspath(folder))
    if here.is_relative_to(Path.cwd() / paths.AUDIT_REVIEW):
        return "`dvc repro audit/dvc.yaml` makes it (stage audit)"
    if here == Path.cwd() / paths.REVIEW_QUEUE_TEST:
        return "`dvc repro` makes it (stage ambiguous)"
    return (f"a queue is made by `dvc repro` ({paths.REVIEW_QUEUE_TEST}) "
            f"or `dvc repro audit/dvc.yaml` ({paths.AUDIT_REVIEW}/train, {paths.AUDIT_REVIEW}/test)")


def _whole(text: str, where: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit() and low <= int(text) < high):
        raise UserError(f"{where} = {text!r}: expected a whole number from {low} to {high - 1}")
    return int(text)


def _number(text: str, where: str, low: float, high: float = math.inf) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        upper = "" if high == math.inf else f" to {high:g}"
        raise UserError(f"{where} = {text!r}: expected a number from {low:g}{upper}")
    return value


def _picture(text: str, where: str, folder: Path) -> Path:
    """The file `text` names inside `folder`: a relative path without `..` that exists."""
    name = PurePosixPath(text)
    if not text or name.is_absolute() or ".." in name.parts or "\\" in text:
        raise UserError(f"{where} = {text!r}: expected a picture's path inside the queue's folder, such as digits/1234.png")
    path = folder / name
    if not path.is_file():
        raise UserError(f"{where} = {text!r}: {path} is missing; {made_by(folder)}")
    return path


def _row(values: dict[str, str], where: str, folder: Path) -> QueuedDigit:
    def at(column: str) -> str:
        return f"{where}: {column}"

    split = values["split"]
    if split not in SPLIT_SIZES:
        raise UserError(f"{at('split')} = {split!r}: expected train or test")
    if values["flagged"] not in ("True", "False"):
        raise UserError(f"{at('flagged')} = {values['flagged']!r}: expected True or False")
    return QueuedDigit(
        rank=_whole(values["rank"], at("rank"), 1, TRAIN_SIZE + 1),  # a queue holds at most every digit of a split
        split=split,
        index=_whole(values["index"], at("index"), 0, SPLIT_SIZES[split]),
        given_label=_whole(values["given_label"], at("given_label"), 0, NUM_CLASSES),
        suggested_label=_whole(values["suggested_label"], at("suggested_label"), 0, NUM_CLASSES),
        label_quality=_number(values["label_quality"], at("label_quality"), 0, 1),
        flagged=values["flagged"] == "True",
        margin=_number(values["margin"], at("margin"), 0, 1),
        entropy=_number(values["entropy"], at("entropy"), 0),
        probs=tuple(_number(values[column], at(column), 0, 1) for column in PROB_COLUMNS),
        digit=_picture(values["digit"], at("digit"), folder),
        explained=_picture(values["explained"], at("explained"), folder) if values["explained"] else None,
    )


def read_queue(folder: str | Path) -> QueueFolder:
    """The queue in `folder`, checked (module docstring); `UserError` on the first problem."""
    folder = Path(folder)
    path = folder / QUEUE_CSV
    try:
        with open(path, newline="", encoding="utf-8") as file:
            records = list(csv.reader(file))
    except FileNotFoundError:
        raise UserError(f"{path}: not found; {made_by(folder)}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: not a readable CSV file: {error}") from None
    if not records:
        raise UserError(f"{path}: empty; it needs at least the header {','.join(QUEUE_COLUMNS)}")
    header, *rows = records
    missing = [column for column in QUEUE_COLUMNS if column not in header]
    if missing or len(set(header)) != len(header):
        problem = f"lacks {', '.join(missing)}" if missing else "names a column twice"
        raise UserError(f"{path}: header {problem}; expected the columns {','.join(QUEUE_COLUMNS)}")
    digits, ranks, places = [], {}, {}
    for number, fields in enumerate(rows, start=2):
        where = f"{path}: row {number}"
        if len(fields) != len(header):
            raise UserError(f"{where}: {len(fields)} fields, but the header names {len(header)}")
        digit = _row({column: field.strip() for column, field in zip(header, fields)}, where, folder)
        for seen, key, what in ((ranks, digit.rank, f"rank {digit.rank}"), (places, (digit.split, digit.index), f"{digit.split} digit {digit.index}")):
            if key in seen:
                raise UserError(f"{where}: {what} again (first on row {seen[key]})")
            seen[key] = number
        digits.append(digit)
    digits.sort(key=lambda digit: digit.rank)
    return QueueFolder(folder, tuple(digits), {(digit.split, digit.index): digit for digit in digits})
