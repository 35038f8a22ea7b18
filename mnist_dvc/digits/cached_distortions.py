"""Seeded random distortions of digits, for the augmented copies cached by the preprocess stage.

More training digits that are plausibly written differently teach a classifier the invariances
it should have. Each distorted image is a random affine map (`mnist_dvc.digits.affine`, the same one the
train step draws) composed with an elastic distortion (Simard, Steinkraus and Platt, 2003: a
uniform random displacement field in [-1, 1] per pixel and axis, smoothed by a Gaussian of width
`elastic_sigma` and scaled by `elastic_alpha`), which mimics the wobble of a hand. A strength of 0
turns its distortion off, and all zero strengths give back the input exactly.

The work is vectorised over a batch: every output pixel gets its source position in one array
expression, and one bilinear gather reads all of them.
"""

import numpy as np
from scipy import ndimage

from mnist_dvc import IMAGE_SIDE as SIDE
from mnist_dvc.digits.affine import sampling_matrices, source_coordinates

_CHUNK = 4096  # images per step: keeps the float temporaries at some tens of MB
_CENTRE = (SIDE - 1) / 2.0
# (2, 28, 28): every pixel's row and column offset from the centre (float32: half the memory traffic)
_OFFSETS = np.stack(np.meshgrid(np.arange(SIDE), np.arange(SIDE), indexing="ij")).astype(np.float32) - _CENTRE


def _bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Images sampled at fractional (rows, cols) per output pixel, zeros outside, rounded to uint8.

    Coordinates are clipped to one pixel outside the image, where the zero padding lies, so any
    point further out reads zeros as well; a point between the edge and the padding fades out.
    Gathering uint8 with int32 indices keeps the memory traffic, which dominates here, small.
    """
    n = len(images)
    width = SIDE + 3  # one padding pixel in front, two behind (the far neighbour of a clipped point)
    padded = np.zeros((n, width, width), dtype=np.uint8)
    padded[:, 1 : SIDE + 1, 1 : SIDE + 1] = images
    rows = np.clip(rows, -1.0, float(SIDE))
    cols = np.clip(cols, -1.0, float(SIDE))
    top_row = np.floor(rows)
    left_col = np.floor(cols)
    row_frac = rows - top_row
    col_frac = cols - left_col
    first = np.arange(n, dtype=np.int32)[:, None, None] * (width * width) + width + 1
    index = first + top_row.astype(np.int32) * width + left_col.astype(np.int32)
    flat = padded.ravel()
    top_left, top_right = flat[index].astype(np.float32), flat[index + 1].astype(np.float32)
    bottom_left = flat[index + width].astype(np.float32)
    bottom_right = flat[index + width + 1].astype(np.float32)
    top = top_left + (top_right - top_left) * col_frac
    bottom = bottom_left + (bottom_right - bottom_left) * col_frac
    return np.rint(top + (bottom - top) * row_frac).astype(np.uint8)  # a convex mix stays in 0..255


def _smoothing_matrix(sigma: float) -> np.ndarray:
    """G with G @ f = Gaussian smoothing of f along its first axis (zeros beyond the edges).

    Applying it as G @ field @ G.T smooths a whole batch of 28x28 fields with two matrix products,
    the same result as scipy's gaussian_filter with mode="constant", many times faster.
    """
    return ndimage.gaussian_filter1d(np.eye(SIDE), sigma, axis=0, mode="constant").astype(np.float32)


def _sampling_matrices(rng: np.random.Generator, n: int, rotation_deg: float, scale: float, shear_deg: float) -> np.ndarray:
    """(n, 2, 2) float32 sampling matrices of `affine`, from strengths drawn uniformly in [-s, s]."""
    theta = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, n))
    slant = np.tan(np.deg2rad(rng.uniform(-shear_deg, shear_deg, n)))
    zoom = 1.0 + rng.uniform(-scale, scale, n)
    return sampling_matrices(theta, slant, zoom).astype(np.float32)


def distort(images: np.ndarray, rng: np.random.Generator, *, rotation_deg: float, shift_px: float,
            scale: float, shear_deg: float, elastic_alpha: float, elastic_sigma: float) -> np.ndarray:
    """Randomly distorted copies of uint8 images (N, 28, 28), one fresh distortion per image.

    The output is a function of the images, the strengths and the state of `rng` alone.
    """
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise ValueError(f"expected images of shape (N, {SIDE}, {SIDE}), got {images.shape}")
    # All per-image parameters first, then the fields chunk by chunk: the generator's stream, and
    # so the output, is then the same whatever the chunk size.
    matrices = _sampling_matrices(rng, len(images), rotation_deg, scale, shear_deg)
    shifts = rng.uniform(-shift_px, shift_px, (len(images), 2)).astype(np.float32)
    smoothing = _smoothing_matrix(elastic_sigma) if elastic_alpha > 0 else None
    out = np.empty(images.shape, dtype=np.uint8)
    for start in range(0, len(images), _CHUNK):
        part = slice(start, start + _CHUNK)
        offsets = _OFFSETS
        if smoothing is not None:
            field = rng.random((len(images[part]), 2, SIDE, SIDE), dtype=np.float32) * 2 - 1
            offsets = _OFFSETS + np.float32(elastic_alpha) * (smoothing @ field @ smoothing.T)
        out[part] = warp(images[part], matrices[part], shifts[part], offsets)
    return out


def warp(images: np.ndarray, matrices: np.ndarray, shifts: np.ndarray, offsets: np.ndarray = _OFFSETS) -> np.ndarray:
    """uint8 images (n, 28, 28) resampled through the affine maps of `mnist_dvc.digits.affine` (matrices
    (n, 2, 2), shifts (n, 2)); `offsets` (2 or n, 2, 28, 28) may add a displacement per pixel."""
    source = source_coordinates(matrices, shifts, offsets, _CENTRE)
    return _bilinear(images, source[:, 0], source[:, 1])


def augment(images: np.ndarray, labels: np.ndarray, copies: int, rng: np.random.Generator,
            **strengths: float) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by `copies` distorted copies of all of them, with labels to match.

    Copy k of image i sits at k * N + i (k = 1..copies), so labels are the originals' repeated.
    `strengths` are the keyword arguments of `distort`.
    """
    distorted = [distort(images, rng, **strengths) for _ in range(copies)]
    return np.concatenate([images, *distorted]), np.tile(labels, copies + 1)
