"""Pictures meant for people rather than for the next stage: digit PNGs, captioned galleries, and
explained galleries (a digit, its saliency map and its nearest training digits on one row).

Every writer goes through `mnist_dvc.io.atomic`, and the PNGs carry no timestamp or version string, so
the same digits and captions always give the same bytes and DVC sees no change when there is none.
"""

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only: never look for a display, also on a headless runner

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from mnist_dvc.io.atomic import atomic_path  # noqa: E402

# matplotlib stamps its version into PNGs by default; dropping it keeps the bytes the same across
# upgrades that draw identically.
_PNG_METADATA = {"Software": None}
_CELL_INCHES = (1.25, 1.7)  # one digit plus up to three caption lines below it
_MIN_WIDTH_INCHES = 6.0
_TITLE_CHAR_INCHES = 0.1  # generous average glyph width at 11 pt, so wrapped lines never get cut
_TITLE_LINE_INCHES = 0.25


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Repeats every pixel (grey, or a trailing axis of colours) `scale` times along both sides:
    a 28x28 digit is too small to see on screen."""
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


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


@dataclass(frozen=True)
class NeighbourGroup:
    """Training digits shown together on an explained row: a header naming them, each digit (uint8
    28x28) and its one-line caption."""

    header: str
    digits: Sequence[np.ndarray]
    captions: Sequence[str]


@dataclass(frozen=True)
class ExplainedRow:
    """One digit of an explained gallery: the digit (uint8 28x28) and its caption, red where
    `wrong`; its saliency map (float 28x28) drawn over `model_input`, the digit as the model saw
    it, whose pixels the saliency belongs to; and its groups of nearest training digits."""

    digit: np.ndarray
    caption: str
    wrong: bool
    model_input: np.ndarray
    saliency: np.ndarray
    saliency_caption: str
    groups: Sequence[NeighbourGroup]


_SCALE = 3  # pixels per digit pixel: 84-pixel digits
_GAP, _GROUP_GAP, _MARGIN = 6, 20, 12  # between digits, before each group of neighbours, around the page
_LINE = 13  # pixels per line of 11-pixel text
_POSITIVE, _NEGATIVE = np.array([200, 30, 30]), np.array([30, 80, 210])  # saliency > 0 red, < 0 blue
_FAINT = 0.3  # share of the digit's ink drawn under its saliency
_CAPTION_GREY, _WRONG_RED = (40, 40, 40), (200, 30, 30)


def saliency_picture(saliency: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """uint8 RGB (28, 28, 3): `saliency` in diverging colours over the faint `digit` (uint8).

    White at zero, red where positive, blue where negative, each saturated at the map's largest
    magnitude, so maps are comparable in shape, not in scale; the digit's ink shows through as
    light grey, so the colours can be placed on its strokes. An all-zero map is the faint digit.
    """
    weight = np.asarray(saliency, dtype=np.float64)
    peak = np.abs(weight).max()
    weight = weight / peak if peak > 0 else np.zeros_like(weight)
    base = (255.0 - _FAINT * np.asarray(digit, dtype=np.float64))[..., None]
    colour = np.where(weight[..., None] > 0, _POSITIVE, _NEGATIVE)
    strength = np.abs(weight)[..., None]
    return np.rint(base * (1 - strength) + colour * strength).astype(np.uint8)


def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, the font matplotlib ships and draws the other galleries with: never a system
    font, so the same bytes on every machine, and it has the arrow of the audit's captions."""
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size)


def _digit_tile(image: np.ndarray) -> Image.Image:
    return Image.fromarray(upscale(np.asarray(image), _SCALE)).convert("RGB")


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """`text` broken between words into lines no wider than `width` pixels in `font` (a longer
    word gets a line of its own)."""
    lines, line = [], ""
    for word in text.split():
        longer = f"{line} {word}" if line else word
        if line and font.getlength(longer) > width:
            lines.append(line)
            longer = word
        line = longer
    return lines + [line]


def save_explained_gallery(rows: Sequence[ExplainedRow], path: str | os.PathLike, title: str) -> None:
    """One row per digit: the digit and its caption; its saliency map (`saliency_picture`) and
    caption; then each group of neighbours under its header, a caption under each neighbour.
    Title (wrapped) on top.

    Every row has the same layout, sized for the largest group given. Like `save_gallery`, an empty
    list still gives a picture, saying that no digit qualified.
    """
    small, large = _font(11), _font(13)
    cell = 28 * _SCALE
    slots = max((len(group.digits) for row in rows for group in row.groups), default=0)
    groups = max((len(row.groups) for row in rows), default=0)
    group_width = slots * cell + max(0, slots - 1) * _GAP
    width = max(2 * _MARGIN + 2 * cell + _GAP + groups * (_GROUP_GAP + group_width), 600)
    title_lines = _wrap(title, large, width - 2 * _MARGIN)
    caption_lines = max((len(text.split("\n")) for row in rows for text in (row.caption, row.saliency_caption)), default=1)
    row_height = _LINE + 2 + cell + 2 + caption_lines * _LINE + _GAP
    top = _MARGIN + (len(title_lines) + 1) * (_LINE + 3)
    page = Image.new("RGB", (width, top + max(1, len(rows)) * row_height + _MARGIN), "white")
    draw = ImageDraw.Draw(page)
    draw.multiline_text((_MARGIN, _MARGIN), "\n".join(title_lines), fill="black", font=large, spacing=3)
    if not rows:
        draw.text((_MARGIN, top), "no digit qualified", fill="black", font=large)
    for number, row in enumerate(rows):
        y = top + number * row_height + _LINE + 2  # the images' top; group headers sit above them
        caption_y = y + cell + 2
        page.paste(_digit_tile(row.digit), (_MARGIN, y))
        draw.multiline_text((_MARGIN, caption_y), row.caption, font=small, spacing=2,
                            fill=_WRONG_RED if row.wrong else _CAPTION_GREY)
        x = _MARGIN + cell + _GAP
        page.paste(Image.fromarray(upscale(saliency_picture(row.saliency, row.model_input), _SCALE)), (x, y))
        draw.rectangle((x - 1, y - 1, x + cell, y + cell), outline=(190, 190, 190))
        draw.multiline_text((x, caption_y), row.saliency_caption, font=small, spacing=2, fill=_CAPTION_GREY)
        x += cell + _GROUP_GAP
        for group in row.groups:
            draw.text((x, y - _LINE - 1), group.header, font=small, fill="black")
            for slot, (digit, caption) in enumerate(zip(group.digits, group.captions)):
                left = x + slot * (cell + _GAP)
                page.paste(_digit_tile(digit), (left, y))
                draw.text((left, caption_y), caption, font=small, fill=_CAPTION_GREY)
            x += group_width + _GROUP_GAP
    with atomic_path(path) as tmp:
        page.save(tmp, format="PNG")
