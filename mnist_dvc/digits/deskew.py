"""Straightens slanted digits by their image moments, the classic MNIST preprocessing step.

People slant their handwriting by different amounts; removing the slant takes a source of
variation away from the classifier (simple models such as k-NN gain most). The slant
is measured from the ink's second-order moments: with r the row and c the column of a pixel,
weighted by its intensity, skew = cov(r, c) / var(r) is how many columns the stroke moves per row.
Shifting every row by -skew * (r - mean r) makes cov(r, c) zero, so the principal axis becomes
vertical. The shear is about the digit's own centre of mass: an upright digit is left unchanged
and no digit is moved.

Because the shear moves each row sideways by a constant amount, it is a 1-D linear interpolation
along every row, done here for a whole batch at once with plain numpy: cheaper than a general 2-D
resampler such as scipy's map_coordinates, which would interpolate along both axes for nothing.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mnist_dvc import IMAGE_SIDE as SIDE

_CHUNK = 4096  # images per step: keeps temporaries small enough to stay fast on a shared machine
_COORDS = np.arange(SIDE, dtype=np.float64)
# Per-pixel weights for the raw moments: 1, r, c, r^2 and r*c, one column each.
_ROWS, _COLS = np.meshgrid(_COORDS, _COORDS, indexing="ij")
_MOMENT_WEIGHTS = np.stack([np.ones(SIDE * SIDE), _ROWS.ravel(), _COLS.ravel(),
                            (_ROWS**2).ravel(), (_ROWS * _COLS).ravel()], axis=1)


def skew_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the row of its centre of mass and its skew cov(r, c) / var(r), both float64 (N,).

    A blank image, or one whose ink lies in a single row, has no measurable slant: skew 0.
    """
    raw = images.reshape(len(images), SIDE * SIDE).astype(np.float64) @ _MOMENT_WEIGHTS
    mass = raw[:, 0]
    safe_mass = np.where(mass > 0, mass, 1.0)
    mean_r, mean_c, mean_rr, mean_rc = (raw[:, 1:] / safe_mass[:, None]).T
    var_r = mean_rr - mean_r**2
    cov_rc = mean_rc - mean_r * mean_c
    has_slant = (mass > 0) & (var_r > 1e-9)
    skew = np.divide(cov_rc, var_r, out=np.zeros(len(images)), where=has_slant)
    return mean_r, skew


def _shear_rows(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Output pixel (n, r, c) = input at (n, r, c + shifts[n, r]), linearly interpolated, zeros outside.

    A row moves as a whole, so its integer part picks a window of the zero-padded row and only the
    fractional part needs blending: far cheaper than interpolating every pixel separately.
    """
    n = len(images)
    whole = np.floor(shifts)
    frac = (shifts - whole).astype(np.float32).reshape(n * SIDE, 1)
    # Row data sits at padded columns SIDE+1 .. 2*SIDE; a shift beyond +-SIDE reads only zeros.
    start = (np.clip(whole, -SIDE - 1, SIDE) + SIDE + 1).astype(np.intp).ravel()
    padded = np.zeros((n * SIDE, 3 * SIDE + 3), dtype=np.uint8)
    padded[:, SIDE + 1 : 2 * SIDE + 1] = images.reshape(n * SIDE, SIDE)
    windows = sliding_window_view(padded, SIDE + 1, axis=1)
    rows = windows[np.arange(n * SIDE), start].astype(np.float32)
    blended = rows[:, :-1] + (rows[:, 1:] - rows[:, :-1]) * frac  # stays within 0..255
    return np.rint(blended).astype(np.uint8).reshape(n, SIDE, SIDE)


def deskew(images: np.ndarray) -> np.ndarray:
    """Deskewed copies of uint8 images (N, 28, 28), as uint8 (N, 28, 28)."""
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"expected images of shape (N, {SIDE}, {SIDE}), got {images.shape}")
    out = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), _CHUNK):
        chunk = images[start : start + _CHUNK]
        mean_r, skew = skew_moments(chunk)
        shifts = skew[:, None] * (_COORDS[None, :] - mean_r[:, None])
        out[start : start + _CHUNK] = _shear_rows(chunk, shifts)
    return out
