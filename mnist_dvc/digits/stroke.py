"""Measures how thick each digit's pen was, and thins or thickens strokes towards one width.

A digit written with a felt-tip and the same digit in fine pencil differ in every pixel a
classifier looks at, yet not in what digit they are. Growing thin strokes and eroding bold ones
towards the average width ("growth/decay of pixels towards the average") removes that source of
variation, for training data and for a user's own digits alike.

The width is measured as a stroke's area over its length, with both taken from the grey image
directly, so the measure is sub-pixel and needs no skeleton: the ink area A is the sum of the
intensities, and the outline's length P the sum of the gradient magnitudes (by the coarea formula,
for an anti-aliased edge that is the edge's length). A pen stroke of width w and length L, modelled
as a w x L rectangle, has A = w L and P = 2 (L + w), hence w = P/4 - sqrt(P^2/16 - A): counting the
two stroke ends keeps short, bold strokes from reading thinner than they are.

Thickness is changed with grey-level morphology, the classic growth and decay of pixels: each
dilation (or erosion) by a 3x3 cross moves every edge outward (or inward) by about one pixel. Those
steps are whole pixels, so each digit's result is a blend of the two neighbouring steps whose
measured widths bracket the target, in proportion, which gives any fractional width. Calibrating
on the measured width of every step, rather than assuming a gain per step, keeps diagonal strokes
(which a cross grows by less) and merging strokes right. Everything is whole-batch numpy and scipy
on chunks of images, and the result is deterministic.
"""

import numpy as np
from scipy import ndimage

STEPS = 3  # dilations and erosions tried each way: enough for pens from hairline to marker at 28x28
_CHUNK = 4096  # images per batch: keeps the 2 * STEPS + 1 float copies small
_CROSS = ndimage.generate_binary_structure(2, 1)[None]  # 3x3 cross, applied to each image alone


def stroke_widths(images: np.ndarray) -> np.ndarray:
    """Each digit's stroke width in pixels, float64 (N,), from uint8 images (N, H, W); 0 for a blank image.

    Measured on the grey image, ink = intensity / 255, as explained in the module docstring: 1 for a
    one-pixel line along the pixel grid, about 1.6 for a one-pixel pen that anti-aliasing spreads
    over two pixels, and for MNIST's training digits a median of about 2.7.
    """
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), got {images.shape}")
    return np.concatenate([_widths(images[start : start + _CHUNK].astype(np.float32) / 255)
                           for start in range(0, len(images), _CHUNK)] or [np.zeros(0)])


def normalise_strokes(images: np.ndarray, target_width: float) -> np.ndarray:
    """Copies of uint8 digits (N, H, W), as uint8, with each one's strokes thinned or thickened so that
    `stroke_widths` reads about `target_width` pixels.

    Up to `STEPS` pixels are added or taken off each edge: a digit further from the target comes as
    close as that allows. Thinning stops before a digit would vanish, but a part much thinner than
    the rest of its digit can fade out. Stroke ends move with the edges, so a digit also grows or
    shrinks by what it gains or loses in width; it is not laid out again. A blank image stays blank.
    """
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W), got {images.shape}")
    if not np.isfinite(target_width) or target_width <= 0:
        raise ValueError(f"target_width must be a positive number of pixels, got {target_width}")
    out = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), _CHUNK):
        out[start : start + _CHUNK] = _normalise_chunk(images[start : start + _CHUNK], target_width)
    return out


def _widths(ink: np.ndarray) -> np.ndarray:
    """`stroke_widths` of float ink images (N, H, W) in [0, 1].

    The gradient is taken at the corners between pixels, from the 2x2 pixels around each corner,
    so that its two components are measured at the same point: far less direction-dependent than
    forward differences, and unlike central differences it sees both edges of a one-pixel line.
    """
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    across = np.diff(padded, axis=2)
    down = np.diff(padded, axis=1)
    gx = across[:, 1:, :] + across[:, :-1, :]
    gy = down[:, :, 1:] + down[:, :, :-1]
    perimeter = np.sqrt(gx * gx + gy * gy).sum(axis=(1, 2), dtype=np.float64) / 2
    area = ink.sum(axis=(1, 2), dtype=np.float64)
    return perimeter / 4 - np.sqrt(np.maximum(perimeter**2 / 16 - area, 0.0))


def _normalise_chunk(images: np.ndarray, target: float) -> np.ndarray:
    """`normalise_strokes` for one batch: every step computed for every image, then each image's
    fractional position between steps picked from the steps' measured widths."""
    levels = [images.astype(np.float32) / 255]
    for _ in range(STEPS):
        levels.insert(0, ndimage.grey_erosion(levels[0], footprint=_CROSS))
        levels.append(ndimage.grey_dilation(levels[-1], footprint=_CROSS))
    stack = np.stack(levels)  # (2 * STEPS + 1, n, H, W): thinnest first, the original in the middle
    widths = np.stack([_widths(level) for level in stack], axis=1)  # (n, levels)
    # Steps eroded to nothing (width -1 here) cannot be blended towards; the rest only get wider, up to noise.
    widths = np.maximum.accumulate(np.where(stack.any(axis=(2, 3)).T, widths, -1.0), axis=1)
    below = (widths < target).sum(axis=1)  # steps thinner than the target
    last = len(levels) - 1
    lower = np.clip(below - 1, 0, last)
    upper = np.clip(below, 0, last)
    rows = np.arange(len(images))
    w_lower, w_upper = widths[rows, lower], widths[rows, upper]
    bracketed = (upper > lower) & (w_lower >= 0)
    fraction = np.where(bracketed, (target - w_lower) / np.where(bracketed, w_upper - w_lower, 1.0), 1.0)
    blank = ~stack[STEPS].any(axis=(1, 2))
    lower = np.where(blank, STEPS, lower)
    upper = np.where(blank, STEPS, upper)
    fraction = fraction.astype(np.float32)[:, None, None]
    blended = (1 - fraction) * stack[lower, rows] + fraction * stack[upper, rows]
    return np.rint(blended * 255).astype(np.uint8)
