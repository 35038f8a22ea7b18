"""Pictures meant for people rather than for the next stage: digit PNGs and captioned galleries.

Every writer goes through `stages.lib.atomic`, and the PNGs carry no timestamp or version string, so
the same digits and captions always give the same bytes and DVC sees no change when there is none.
"""

import math
import os
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: never look for a display, also on a headless runner

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from stages.lib.atomic import atomic_path  # noqa: E402

# matplotlib stamps its version into PNGs by default; dropping it keeps the bytes the same across
# upgrades that draw identically.
_PNG_METADATA = {"Software": None}
_CELL_INCHES = (1.25, 1.7)  # one digit plus up to three caption lines below it
_MIN_WIDTH_INCHES = 6.0
_TITLE_CHAR_INCHES = 0.1  # generous average glyph width at 11 pt, so wrapped lines never get cut
_TITLE_LINE_INCHES = 0.25


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Repeats every pixel `scale` times per axis: a 28x28 digit is too small to see on screen."""
    return np.kron(image, np.ones((scale, scale), dtype=image.dtype))


def save_digit_png(image: np.ndarray, path: str | os.PathLike, scale: int = 4) -> None:
    """Writes one uint8 grey-scale digit as a PNG, `scale` times larger, with its exact pixel values."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 image, got {image.dtype} {image.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(upscale(image, scale)).save(tmp, format="PNG")


def digit_caption(row: Mapping) -> str:
    """Three short lines under a digit (a `describe` row): test index, truth vs prediction, runner-up."""
    return (
        f"#{row['index']}\ntrue {row['label']}  pred {row['prediction']}\n"
        f"p={row['confidence']:.3f}  2nd {row['second']}"
    )


def save_gallery(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    path: str | os.PathLike,
    title: str,
    columns: int = 10,
    wrong: Sequence[bool] | None = None,
) -> None:
    """Draws digits on a grid with a caption under each (red where `wrong`) and a title on top.

    An empty gallery still gets a file, saying that no digit qualified, so the stage's declared
    outputs always exist.
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    wrong = [False] * len(images) if wrong is None else list(wrong)
    columns = max(1, min(columns, len(images)))
    rows = max(1, math.ceil(len(images) / columns))
    width = max(columns * _CELL_INCHES[0], _MIN_WIDTH_INCHES)
    title_lines = textwrap.wrap(title, int(width / _TITLE_CHAR_INCHES)) or [""]
    title_inches = (len(title_lines) + 1) * _TITLE_LINE_INCHES
    height = rows * _CELL_INCHES[1] + title_inches
    figure = Figure(figsize=(width, height))
    figure.text(0.5, 1 - 0.5 * _TITLE_LINE_INCHES / height, "\n".join(title_lines), ha="center", va="top",
                fontsize=11)
    if not images:
        figure.text(0.5, 0.4, "no digit qualified", ha="center", va="center", fontsize=10)
    cell_w, cell_h = _CELL_INCHES[0] / figure.get_figwidth(), _CELL_INCHES[1] / height
    image_h = 0.6 * cell_h
    left_margin = (1 - columns * cell_w) / 2
    for slot, (image, caption, is_wrong) in enumerate(zip(images, captions, wrong)):
        row, column = divmod(slot, columns)
        top = 1 - (title_inches / height) - row * cell_h
        axes = figure.add_axes((left_margin + column * cell_w + 0.1 * cell_w, top - 0.05 * cell_h - image_h,
                                0.8 * cell_w, image_h))
        axes.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes.set_axis_off()
        axes.text(0.5, -0.06, caption, transform=axes.transAxes, ha="center", va="top", fontsize=7,
                  color="tab:red" if is_wrong else "black", linespacing=1.2)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, metadata=_PNG_METADATA)


def save_sheet(inputs: Sequence[np.ndarray], digits: Sequence[np.ndarray], captions: Sequence[str], path: str | os.PathLike) -> None:
    """Each input picture (grey, any size) beside the 28x28 digit the model saw, with its caption
    under the digit: what a person needs to check that a prediction read the right thing."""
    images = [image for pair in zip(inputs, digits) for image in pair]
    labels = [text for caption in captions for text in ("input", caption)]
    save_gallery(images, labels, path, title="Each input, then the 28x28 digit the model saw and what it said", columns=8)
