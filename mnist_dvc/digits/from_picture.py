"""Turns a picture of one handwritten digit into a 28x28 MNIST digit, the way MNIST's own were made.

A model trained on MNIST only understands digits laid out like MNIST's: white ink on black, the
digit's longer side 20 pixels with grey anti-aliased edges, its centre of mass at the centre of a
28x28 field (LeCun et al., "Gradient-based learning applied to document recognition", 1998). A
photo, a scan or a drawing from a paint program is none of that, so it goes through the same steps:

1. decoding (PNG, JPEG, BMP, GIF's first frame, WebP) to grey, with the camera's EXIF rotation
   applied and transparent pixels composited over the paper (pictures over `MAX_PIXELS`, 4096x4096,
   are refused from their header, undecoded);
2. finding which side is paper: the median of the outermost pixels is the paper's grey, and the ink
   is whichever of the darkest and the brightest pixel lies further from it, so dark ink on light
   paper and light ink on a blackboard both work;
3. removing the paper with a soft threshold relative to the contrast (see `prepare_digit`);
4. `mnist_layout`: crop to the ink, fit the longer side into 20 pixels, centre by mass;
5. the model's own preparation (`mnist_dvc.digits.preparation`: deskewing, stroke normalisation).
"""

import io
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_dvc import IMAGE_SIDE as SIDE
from mnist_dvc.digits.preparation import prepare
from mnist_dvc.errors import UserError, read_user_file

BOX = 20  # the longer side of the ink, as in MNIST
CENTRE = 14.0  # MNIST's centres of mass average (14.0, 14.0) in row/column index, each within +-0.5
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
# The most pixels a picture may have: 4096x4096, more than a 12-megapixel phone photo (4000x3000).
# Checked in the header, before decoding: a small file of a plain colour can declare a huge picture,
# and decoding plus the float copies of `prepare_digit` take some 20 bytes a pixel.
MAX_PIXELS = 4096 * 4096
MIN_CONTRAST = 0.1  # ink must differ from the paper by a tenth of the grey scale (about 26 levels) to count
# Soft threshold, as fractions of the ink's contrast: paper below LOW, full ink above HIGH, a ramp between.
LOW, HIGH = 0.25, 0.75


class TooManyPixels(UserError):
    """A picture with more than `MAX_PIXELS` pixels, refused before it is decoded."""


def image_files(paths: Iterable[Path]) -> list[Path]:
    """`paths` with every folder replaced by the image files under it (recursively, sorted, picked by
    a suffix in `SUFFIXES`, any case); anything else, existing or not, is kept as given, in order."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()))
        else:
            files.append(path)
    return files


def prepare_digit(source: str | os.PathLike | bytes, preparation: dict, *, name: str | None = None) -> np.ndarray:
    """The digit pictured in `source` (a file path, or the file's bytes) as uint8 (28, 28), white on black.

    The paper is removed with a soft threshold at half the ink's contrast: with c the largest
    difference from the paper's grey, a pixel that differs by less than a quarter of c is paper (0),
    one that differs by more than three quarters is full ink (255), with a linear ramp between. So
    paper texture, JPEG noise and pencil pressure are flattened as NIST's binary scans were, while
    each edge stays where the ink is half-dark and keeps its anti-aliasing. Every remaining pixel is
    ink: a speck far from the digit widens the crop. Then `mnist_layout`, then `preparation.prepare`
    (the model's own deskewing and stroke normalisation).

    Raises `UserError`, one line naming the file (`name`, else the path, else "upload"), when the
    file is missing, unreadable, empty, not a picture in a supported format, larger than
    `MAX_PIXELS` (`TooManyPixels`), cut short or corrupt, or holds no ink (contrast below `MIN_CONTRAST`).
    """
    source_name = name or (str(source) if not isinstance(source, bytes) else "upload")
    return digit_from_grey(read_grey(source, source_name), preparation, source_name)


def read_grey(source: str | os.PathLike | bytes, source_name: str) -> np.ndarray:
    """Step 1 of `prepare_digit`: the picture in `source` as grey float32 (H, W) in [0, 1], upright,
    see-through pixels replaced by paper: what `digit_from_grey` takes, and what a person should be
    shown as the input. `UserError` naming `source_name` as `prepare_digit` describes."""
    return _paper_on_grey(_decode(source, source_name))


def digit_from_grey(grey: np.ndarray, preparation: dict, source_name: str) -> np.ndarray:
    """Steps 2 to 5 of `prepare_digit` on a `read_grey` picture: uint8 (28, 28), white on black;
    `UserError` naming `source_name` when it holds no ink."""
    paper = float(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))
    lowest, highest = float(grey.min()), float(grey.max())
    difference = paper - grey if paper - lowest >= highest - paper else grey - paper
    contrast = float(difference.max())
    if contrast < MIN_CONTRAST:
        raise UserError(f"{source_name}: no digit found: the picture is blank (no ink darker or brighter than the paper)")
    ink = np.clip((difference / contrast - LOW) / (HIGH - LOW), 0.0, 1.0)
    digit = mnist_layout(ink)
    return prepare(digit[None], preparation)[0]


def mnist_layout(ink: np.ndarray) -> np.ndarray:
    """Lays out an ink map (float (H, W) in [0, 1], 0 background, 1 full ink) as an MNIST digit:
    uint8 (28, 28), 255 for full ink.

    Crops to the pixels above 0, resizes so the longer side is 20 pixels keeping the aspect ratio
    (Pillow's BOX filter when shrinking, the exact area average that anti-aliases a sharp edge;
    LANCZOS when enlarging a small drawing), and pastes it into a black 28x28 field at the whole-pixel
    offset that puts its centre of mass nearest (14, 14) in row/column index, as MNIST did (kept
    inside the field). Digits already in MNIST layout, such as Kaggle's, need none of this.

    Raises ValueError for an ink map with no ink: a caller that takes drawings decides what a
    blank one means to its user.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if ink.ndim != 2:
        raise ValueError(f"expected an ink map of shape (H, W), got {ink.shape}")
    rows, cols = np.nonzero(ink > 0)
    if not len(rows):
        raise ValueError("the ink map holds no ink")
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = BOX / max(crop.shape)
    width, height = (max(1, round(side * scale)) for side in crop.shape[::-1])
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.LANCZOS
    fitted = np.clip(np.asarray(Image.fromarray(crop).resize((width, height), resample)), 0.0, 1.0)
    mass = fitted.sum()
    centre_row = (fitted.sum(axis=1) @ np.arange(height)) / mass
    centre_col = (fitted.sum(axis=0) @ np.arange(width)) / mass
    top = int(np.clip(round(CENTRE - centre_row), 0, SIDE - height))
    left = int(np.clip(round(CENTRE - centre_col), 0, SIDE - width))
    digit = np.zeros((SIDE, SIDE), dtype=np.uint8)
    digit[top : top + height, left : left + width] = np.rint(fitted * 255).astype(np.uint8)
    return digit


def _decode(source: str | os.PathLike | bytes, source_name: str) -> Image.Image:
    """The first frame of the picture, decoded in full and turned upright by its EXIF orientation;
    its size is checked against `MAX_PIXELS` from the header, before decoding."""
    if isinstance(source, bytes):
        data = source
    else:
        data = read_user_file(source, source_name)
    if not data:
        raise UserError(f"{source_name}: empty file")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise _too_many_pixels(source_name, f"{width}x{height} pixels")
        image.load()
        return ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise UserError(f"{source_name}: not a PNG, JPEG, BMP, GIF or WebP picture (or cut short within its header)") from None
    except Image.DecompressionBombError:
        raise _too_many_pixels(source_name, f"over {2 * Image.MAX_IMAGE_PIXELS:,} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise UserError(f"{source_name}: cannot be decoded (cut short or corrupt): {error}") from None


def _too_many_pixels(source_name: str, size: str) -> TooManyPixels:
    side = math.isqrt(MAX_PIXELS)
    return TooManyPixels(f"{source_name}: too large: {size}; the limit is {MAX_PIXELS:,} ({side}x{side}), so scale the picture down")


def _paper_on_grey(image: Image.Image) -> np.ndarray:
    """The picture as grey float32 (H, W) in [0, 1], see-through pixels replaced by paper.

    A picture with transparency is taken as ink drawn on a see-through sheet: the paper put behind
    it is white under dark ink and black under light ink (the alpha-weighted mean grey of the
    picture deciding which), so transparent pixels always end up as background.
    """
    if image.mode.startswith("I"):  # 16-bit grey PNG: Pillow's convert("L") would clip, not scale
        return np.asarray(image, dtype=np.float32) / 65535.0
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    rgba = image.convert("RGBA")
    grey = np.asarray(rgba.convert("L"), dtype=np.float32) / 255.0
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
    weight = alpha.sum()
    paper = 1.0 if weight > 0 and (alpha * grey).sum() / weight < 0.5 else 0.0
    return alpha * grey + (1.0 - alpha) * paper
