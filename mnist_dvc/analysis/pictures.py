"""Pictures meant for people rather than for the next stage: digit PNGs, captioned galleries, and
explained galleries (a digit, its saliency map and its nearest training digits on one row).

Everything is drawn with Pillow, on a layout counted in pixels: a digit is enlarged by a whole
factor, so that each of its pixels stays a flat square of its exact value (no resampling blurs a
stroke, and a test can find every digit a gallery shows), and colour pictures such as saliency
maps are pasted as they are. Every writer goes through `mnist_dvc.io.atomic`, and Pillow writes no
timestamp or version string into a PNG, so the same digits and captions always give the same
bytes and DVC sees no change when there is none.
"""

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mnist_dvc.io.atomic import atomic_path

# The square each picture of a captioned gallery is drawn in: a 28x28 digit 4 times larger, and a
# picture of another size (mnist-dvc's inputs, kept at most this large) by the largest whole factor that fits.
PICTURE_SIDE = 112
_SCALE = 3  # pixels per digit pixel in an explained gallery: 84-pixel digits, a dozen to a row
_GAP, _GROUP_GAP, _MARGIN = 6, 20, 12  # between pictures, before each group of neighbours, around the page
_LINE = 13  # pixels per line of 11-pixel text
_MIN_WIDTH = 600  # pixels: room for a title even above a gallery of one digit
_CAPTION_GREY, _WRONG_RED = (40, 40, 40), (200, 30, 30)


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Repeats every pixel (grey, or a trailing axis of colours) `scale` times along both sides:
    a 28x28 digit is too small to see on screen."""
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def save_digit_png(image: np.ndarray, path: str | os.PathLike, scale: int = 4) -> None:
    """Writes one uint8 grey-scale digit as a PNG, `scale` times larger, with its exact pixel values."""
    _check_grey(image)
    with atomic_path(path) as tmp:
        Image.fromarray(upscale(image, scale)).save(tmp, format="PNG")


def _check_grey(image: np.ndarray) -> None:
    """ValueError unless `image` is a grey picture as the pipeline stores them: 2-D uint8."""
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 image, got {image.dtype} {image.shape}")


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
    """Draws uint8 grey pictures on a grid of `columns`, each in a square of `PICTURE_SIDE` pixels
    (`_fitted`) with its caption under it (red where `wrong`), and the title, wrapped, on top.

    An empty gallery still gets a file, saying that no digit qualified, so the stage's declared
    outputs always exist. ValueError when the captions do not pair up with the pictures, or a
    picture is not 2-D uint8 or is larger than the square.
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    wrong = [False] * len(images) if wrong is None else list(wrong)
    columns = max(1, min(columns, len(images)))
    small, cell = _font(11), PICTURE_SIDE + 2 * _GAP
    caption_lines = max((len(caption.split("\n")) for caption in captions), default=1)
    row_height = PICTURE_SIDE + 2 + caption_lines * _LINE + _GAP
    width = max(2 * _MARGIN + columns * cell, _MIN_WIDTH)
    page, draw, top = _page(width, title, math.ceil(len(images) / columns), row_height)
    left = (width - columns * cell) // 2
    for slot, (image, caption, is_wrong) in enumerate(zip(images, captions, wrong)):
        row, column = divmod(slot, columns)
        x, y = left + column * cell, top + row * row_height
        picture = _fitted(image)
        page.paste(picture, (x + (cell - picture.width) // 2, y + (PICTURE_SIDE - picture.height) // 2))
        draw.multiline_text((x + cell // 2, y + PICTURE_SIDE + 2), caption, font=small, spacing=2, anchor="ma", align="center",
                            fill=_WRONG_RED if is_wrong else _CAPTION_GREY)
    _save(page, path)


def _fitted(image: np.ndarray) -> Image.Image:
    """A 2-D uint8 picture enlarged by the largest whole factor that keeps it within `PICTURE_SIDE`
    pixels a side; ValueError for another kind of array or a larger picture."""
    _check_grey(image)
    if max(image.shape) > PICTURE_SIDE:
        raise ValueError(f"a {image.shape[1]}x{image.shape[0]} picture does not fit a gallery's {PICTURE_SIDE}-pixel square")
    return _tile(image, PICTURE_SIDE // max(image.shape))


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


_POSITIVE, _NEGATIVE = np.array([200, 30, 30]), np.array([30, 80, 210])  # saliency > 0 red, < 0 blue
_FAINT = 0.3  # share of the digit's ink drawn under its saliency


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
    """DejaVu Sans, the font file matplotlib ships (matplotlib draws nothing here): never a system
    font, so the same bytes on every machine, and it has the arrow of the audit's captions."""
    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size)


def _tile(picture: np.ndarray, scale: int) -> Image.Image:
    """A uint8 grey or RGB picture `scale` times larger (`upscale`), as RGB, ready to paste."""
    return Image.fromarray(upscale(np.asarray(picture), scale)).convert("RGB")


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
    small = _font(11)
    cell = 28 * _SCALE
    slots = max((len(group.digits) for row in rows for group in row.groups), default=0)
    groups = max((len(row.groups) for row in rows), default=0)
    group_width = slots * cell + max(0, slots - 1) * _GAP
    width = max(2 * _MARGIN + 2 * cell + _GAP + groups * (_GROUP_GAP + group_width), _MIN_WIDTH)
    caption_lines = max((len(text.split("\n")) for row in rows for text in (row.caption, row.saliency_caption)), default=1)
    row_height = _LINE + 2 + cell + 2 + caption_lines * _LINE + _GAP
    page, draw, top = _page(width, title, len(rows), row_height)
    for number, row in enumerate(rows):
        y = top + number * row_height + _LINE + 2  # the images' top; group headers sit above them
        caption_y = y + cell + 2
        page.paste(_tile(row.digit, _SCALE), (_MARGIN, y))
        draw.multiline_text((_MARGIN, caption_y), row.caption, font=small, spacing=2,
                            fill=_WRONG_RED if row.wrong else _CAPTION_GREY)
        x = _MARGIN + cell + _GAP
        page.paste(_tile(saliency_picture(row.saliency, row.model_input), _SCALE), (x, y))
        draw.rectangle((x - 1, y - 1, x + cell, y + cell), outline=(190, 190, 190))
        draw.multiline_text((x, caption_y), row.saliency_caption, font=small, spacing=2, fill=_CAPTION_GREY)
        x += cell + _GROUP_GAP
        for group in row.groups:
            draw.text((x, y - _LINE - 1), group.header, font=small, fill="black")
            for slot, (digit, caption) in enumerate(zip(group.digits, group.captions)):
                left = x + slot * (cell + _GAP)
                page.paste(_tile(digit, _SCALE), (left, y))
                draw.text((left, caption_y), caption, font=small, fill=_CAPTION_GREY)
            x += group_width + _GROUP_GAP
    _save(page, path)


def _page(width: int, title: str, rows: int, row_height: int) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """A white RGB page `width` pixels wide, with `title` wrapped on top and room below for `rows`
    rows of `row_height` pixels; without rows, a line there says that no digit qualified. Returns
    the page, a pen on it and the top of the first row."""
    large = _font(13)
    title_lines = _wrap(title, large, width - 2 * _MARGIN)
    top = _MARGIN + (len(title_lines) + 1) * (_LINE + 3)
    page = Image.new("RGB", (width, top + max(1, rows) * row_height + _MARGIN), "white")
    draw = ImageDraw.Draw(page)
    draw.multiline_text((_MARGIN, _MARGIN), "\n".join(title_lines), fill="black", font=large, spacing=3)
    if not rows:
        draw.text((_MARGIN, top), "no digit qualified", fill="black", font=large)
    return page, draw, top


def _save(page: Image.Image, path: str | os.PathLike) -> None:
    """Writes `page` as a PNG, atomically; Pillow adds no metadata, so equal pages give equal bytes."""
    with atomic_path(path) as tmp:
        page.save(tmp, format="PNG")
