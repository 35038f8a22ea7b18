"""The one definition of a random affine distortion of a digit, shared by the cached copies
(`cached_distortions`, numpy, preprocess stage) and the fresh ones drawn inside the train step
(`fresh_distortions`, JAX): the same strengths mean the same transform in both.

A distortion shifts the digit by `shift` pixels (row, column), then zooms it by `zoom`, shears it
by `slant` (columns move `slant` pixels per row, like a slanted hand) and rotates it by `theta`
radians, all about the image centre. Resampling needs the inverse map, from each output pixel to
where it reads the input: source = M @ (output - centre) + centre - shift, with
M = (1/zoom) Shear(-slant) Rotation(-theta). Only the random draws differ between the two users (numpy's Generator there,
`jax.random` keys here), since each framework has its own random numbers.
"""

import numpy as np


def sampling_matrices(theta, slant, zoom, xp=np):
    """M per image, (n, 2, 2) in (row, column) order, from (n,) arrays of `xp` (numpy or jax.numpy)."""
    cos, sin = xp.cos(theta), xp.sin(theta)
    first_row = xp.stack([cos, sin], -1)
    second_row = xp.stack([-slant * cos - sin, cos - slant * sin], -1)
    return xp.stack([first_row, second_row], -2) / zoom[:, None, None]


def source_coordinates(matrices, shifts, offsets, centre: float, xp=np):
    """Where every output pixel reads the input: (n, 2, H, W) from matrices (n, 2, 2), shifts (n, 2)
    and `offsets` (2, H, W) or (n, 2, H, W), each output pixel's (row, column) minus `centre`."""
    spec = "nij,jhw->nihw" if offsets.ndim == 3 else "nij,njhw->nihw"
    return xp.einsum(spec, matrices, offsets) + centre - shifts[:, :, None, None]
