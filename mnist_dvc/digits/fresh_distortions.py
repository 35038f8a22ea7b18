"""Fresh random affine distortions of a batch, inside the jitted train step.

Cached augmentation (the preprocess stage) shows the network the same few distorted copies every
epoch; drawing new ones for every batch on the accelerator costs a bilinear resample of 28x28
pixels, which is small next to the convolutions, and keeps the host out of the loop. The
transform is `mnist_dvc.digits.affine`'s, the same as the cached copies'.
"""

import jax
import jax.numpy as jnp

from mnist_dvc.config.params import Distortion
from mnist_dvc.digits.affine import sampling_matrices, source_coordinates


def is_identity(strengths: Distortion) -> bool:
    return not any((strengths.rotation_deg, strengths.shift_px, strengths.scale, strengths.shear_deg))


def _draw(key: jax.Array, n: int, strengths: Distortion) -> tuple[jax.Array, jax.Array]:
    """Per image, a sampling matrix (n, 2, 2) and a shift (n, 2), each strength uniform in [-s, s]."""
    k_rot, k_shear, k_scale, k_shift = jax.random.split(key, 4)
    theta = jnp.deg2rad(strengths.rotation_deg) * jax.random.uniform(k_rot, (n,), minval=-1, maxval=1)
    slant = jnp.tan(jnp.deg2rad(strengths.shear_deg) * jax.random.uniform(k_shear, (n,), minval=-1, maxval=1))
    zoom = 1 + strengths.scale * jax.random.uniform(k_scale, (n,), minval=-1, maxval=1)
    shift = strengths.shift_px * jax.random.uniform(k_shift, (n, 2), minval=-1, maxval=1)
    return sampling_matrices(theta, slant, zoom, xp=jnp), shift


def warp(images: jax.Array, matrices: jax.Array, shifts: jax.Array) -> jax.Array:
    """Float images (n, H, W) resampled through the affine maps (matrices (n, 2, 2), shifts (n, 2)),
    bilinear, zero outside."""
    _, height, width = images.shape
    centre = (height - 1) / 2  # square digits: one centre for both axes, as in mnist_dvc.digits.affine
    grid = jnp.stack(jnp.meshgrid(jnp.arange(height, dtype=images.dtype), jnp.arange(width, dtype=images.dtype), indexing="ij"))
    source = source_coordinates(matrices, shifts, grid - centre, centre, xp=jnp)

    def sample(image, coords):
        return jax.scipy.ndimage.map_coordinates(image, [coords[0], coords[1]], order=1, mode="constant")

    return jax.vmap(sample)(images, source)


def random_affine(key: jax.Array, images: jax.Array, strengths: Distortion) -> jax.Array:
    """Distorts float images (B, H, W) by independent random affine maps drawn from `key`."""
    matrices, shifts = _draw(key, images.shape[0], strengths)
    return warp(images, matrices, shifts)
