"""How digits are prepared before a model sees them: one definition for its training, validation
and test digits (the preprocess stage) and for anyone's own digits (`mnist-dvc predict`, the
predict stage, the page), so a model always sees digits prepared the way it learnt them.

A preparation is a small dict, written by preprocess to data/prepared/preparation.json and copied
by train into every model's model.json:
- "deskew" (bool): straighten each digit by its image moments (`mnist_dvc.digits.deskew`);
- "stroke_width" (float or None): after that, thin or thicken every digit's strokes towards this
  ink width in pixels (`mnist_dvc.digits.stroke`), the median width of the model's training digits;
  None leaves strokes as written.
"""

import numpy as np

from mnist_dvc.digits.deskew import deskew
from mnist_dvc.digits.stroke import normalise_strokes, stroke_widths


def preparation_for(training_digits: np.ndarray, *, deskew_digits: bool, normalise_strokes_to_median: bool) -> dict:
    """The preparation the preprocess stage's settings describe; the stroke width target is the
    median width of `training_digits` (uint8 (N, 28, 28), as read) once deskewed if asked."""
    found = {"deskew": deskew_digits, "stroke_width": None}
    if normalise_strokes_to_median:
        found["stroke_width"] = round(float(np.median(stroke_widths(prepare(training_digits, found)))), 4)
    return found


def prepare(digits: np.ndarray, preparation: dict) -> np.ndarray:
    """uint8 digits (N, 28, 28) in MNIST's layout, prepared as `preparation` says."""
    if preparation["deskew"]:
        digits = deskew(digits)
    if preparation.get("stroke_width") is not None:
        digits = normalise_strokes(digits, preparation["stroke_width"])
    return digits
