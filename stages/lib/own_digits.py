"""Predictions for digits from outside MNIST: image files, folders of them, or a Kaggle "Digit
Recognizer" CSV, each prepared exactly as the model's training digits were.

The preparation (deskewing, stroke normalisation) is the one in the model's own model.json, never
the current params.yaml's, so a model predicts with the preparation it was trained with. A file that cannot be
read as a digit is reported on its own and the rest are still predicted.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from stages.lib.ambiguity import predictions, verdicts
from stages.lib.digit_image import image_files, prepare_digit
from stages.lib.errors import UserError
from stages.lib.idx import NUM_CLASSES
from stages.lib.inference import Classifier, predict_proba
from stages.lib.preparation import prepare

BATCH = 256  # one compiled shape for every call


@dataclass
class Batch:
    """Digits to predict: their names (file path or Kaggle ImageId), the pictures as given (grey,
    when asked for), the 28x28 digits the model sees, labels if the input had them, and what failed."""

    names: list[str] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    digits: list[np.ndarray] = field(default_factory=list)
    labels: np.ndarray | None = None
    failures: list[str] = field(default_factory=list)


def from_files(paths: list[Path], preparation: dict, keep_inputs: bool = False) -> Batch:
    """Every image file named or found in the folders of `paths`, prepared; unreadable ones go to
    `failures`. With `keep_inputs` the pictures are also kept as given (decoded a second time:
    only a sheet needs them)."""
    batch = Batch()
    for path in image_files(paths):
        try:
            batch.digits.append(prepare_digit(path, preparation))
        except UserError as error:
            batch.failures.append(str(error))
            continue
        batch.names.append(str(path))
        if keep_inputs:
            with Image.open(path) as picture:
                batch.inputs.append(np.asarray(ImageOps.exif_transpose(picture).convert("L")))
    return batch


def from_kaggle(path: Path, preparation: dict) -> Batch:
    """The digits of a Kaggle CSV, already in MNIST's layout, prepared as the model's were; named by ImageId."""
    from stages.lib.kaggle import read_digits_csv

    images, labels = read_digits_csv(path)
    digits = prepare(images, preparation)
    return Batch(names=[str(i) for i in range(1, len(digits) + 1)], inputs=list(images), digits=list(digits), labels=labels)


def predict(classifier: Classifier, batch: Batch, cutoff: dict[str, float]) -> pd.DataFrame:
    """One row per digit: name, `ambiguity.predictions` columns, and `ambiguous` (the definitions of
    the `ambiguous` stage under which it would have been listed, "+"-joined, "" for none)."""
    probs = predict_proba(classifier, np.stack(batch.digits), BATCH) if batch.digits else np.zeros((0, NUM_CLASSES), np.float32)
    table = predictions(probs)
    table.insert(0, "name", batch.names)
    table["ambiguous"] = verdicts(table, cutoff, batch.labels)
    return table
