"""Predictions for digits from outside MNIST: image files, folders of them, or a Kaggle "Digit
Recognizer" CSV, each prepared exactly as the model's training digits were.

The preparation (deskewing, stroke normalisation) is the one in the model's own model.json, never
the current params.yaml's, so a model predicts with the preparation it was trained with. The
probabilities are calibrated with the temperature the `ambiguous` stage's were, so that they and
the ambiguity verdicts are in the terms of that stage's cutoffs. A file that cannot be read as a
digit, and a folder holding none, is reported on its own and the rest are still predicted.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mnist_dvc import NUM_CLASSES
from mnist_dvc.analysis.ambiguity import verdicts
from mnist_dvc.analysis.answers import predictions
from mnist_dvc.analysis.calibration import calibrated_probs
from mnist_dvc.analysis.pictures import PICTURE_SIDE, save_gallery
from mnist_dvc.digits.from_picture import SUFFIXES, digit_from_grey, image_files, read_grey
from mnist_dvc.digits.preparation import prepare
from mnist_dvc.errors import UserError
from mnist_dvc.models.inference import Classifier, predict_proba

BATCH = 256  # one compiled shape for every call
# The most digits a sheet shows, the first ones: each pair drawn costs time and page, and a Kaggle
# file holds 28,000 digits.
SHEET_DIGITS = 100


@dataclass
class Batch:
    """Digits to predict: their names (file path or Kaggle ImageId), the pictures of the first
    ones as `from_picture.read_grey` saw them (uint8 grey, when asked for; for a sheet), the 28x28
    digits the model sees, labels if the input had them, and what failed."""

    names: list[str] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    digits: list[np.ndarray] = field(default_factory=list)
    labels: np.ndarray | None = None
    failures: list[str] = field(default_factory=list)


def from_files(paths: list[Path], preparation: dict, keep_inputs: int = 0) -> Batch:
    """Every image file named or found in the folders of `paths`, prepared; an unreadable one, and
    a folder holding no image file, go to `failures`, one line naming it. The pictures of the first
    `keep_inputs` digits are kept too, from the same decoding: upright, transparency flattened as
    the digit's was, shrunk to at most `pictures.PICTURE_SIDE` pixels a side (`_thumbnail`)."""
    batch = Batch()
    for given in map(Path, paths):
        files = image_files([given])
        if given.is_dir() and not files:
            batch.failures.append(f"{given}: no image files in this folder (looked for {', '.join(sorted(SUFFIXES))})")
        for path in files:
            try:
                grey = read_grey(path, str(path))
                batch.digits.append(digit_from_grey(grey, preparation, str(path)))
            except UserError as error:
                batch.failures.append(str(error))
                continue
            batch.names.append(str(path))
            if len(batch.inputs) < keep_inputs:
                batch.inputs.append(_thumbnail(grey))
    return batch


def _thumbnail(grey: np.ndarray) -> np.ndarray:
    """A `read_grey` picture as uint8, shrunk by area average (Pillow's BOX) so that its longer side
    is at most `pictures.PICTURE_SIDE` pixels, the square a sheet draws it in, keeping its aspect
    ratio; a smaller one is kept as it is (the sheet enlarges it by a whole factor)."""
    picture = Image.fromarray(np.rint(np.clip(grey, 0.0, 1.0) * 255).astype(np.uint8))
    scale = PICTURE_SIDE / max(picture.size)
    if scale < 1:
        picture = picture.resize(tuple(max(1, round(side * scale)) for side in picture.size), Image.Resampling.BOX)
    return np.asarray(picture)


def from_kaggle(path: Path, preparation: dict) -> Batch:
    """The digits of a Kaggle CSV, already in MNIST's layout, prepared as the model's were; named by ImageId."""
    from mnist_dvc.digits.kaggle_csv import read_digits_csv

    images, labels = read_digits_csv(path)
    digits = prepare(images, preparation)
    return Batch(names=[str(i) for i in range(1, len(digits) + 1)], inputs=list(images), digits=list(digits), labels=labels)


def predict(classifier: Classifier, batch: Batch, cutoff: dict[str, float], temperature: float) -> pd.DataFrame:
    """One row per digit: name, `answers.predictions` columns, and `ambiguous` (the definitions of
    the `ambiguous` stage under which it would have been listed, "+"-joined, "" for none).

    The model's probabilities are calibrated with `temperature` first (`calibration.calibrated_probs`),
    which must be the one of the probabilities `cutoff` was drawn from (both from
    `ambiguity.load_cutoffs` of the same summary.json): the columns and the verdicts are then in
    the terms of that stage's tables."""
    raw = predict_proba(classifier, np.stack(batch.digits), BATCH) if batch.digits else np.zeros((0, NUM_CLASSES), np.float32)
    table = predictions(calibrated_probs(raw, temperature))
    table.insert(0, "name", batch.names)
    table["ambiguous"] = verdicts(table, cutoff, batch.labels)
    return table


def save_sheet(batch: Batch, table: pd.DataFrame, path: str | os.PathLike) -> int:
    """A PNG of the first `SHEET_DIGITS` digits at most: each input beside the 28x28 digit the model
    saw, captioned with what it said (`table`, `predict`'s for `batch`); its title says how many of
    how many digits it shows. Returns that number. ValueError when `batch` kept fewer inputs."""
    shown = min(len(table), SHEET_DIGITS)
    if len(batch.inputs) < shown:
        raise ValueError(f"the sheet shows {shown} digits but the batch kept {len(batch.inputs)} inputs")
    rows = table.head(shown).itertuples()
    captions = [f"{row.prediction} p={row.confidence:.2f}\n2nd {row.second}" for row in rows]
    pictures = [picture for pair in zip(batch.inputs[:shown], batch.digits[:shown]) for picture in pair]
    labels = [text for caption in captions for text in ("input", caption)]
    count = f"all {shown} digits" if shown == len(table) else f"the first {shown} of {len(table):,} digits"
    save_gallery(pictures, labels, path, title=f"Each input, then the 28x28 digit the model saw and what it said: {count}", columns=8)
    return shown
