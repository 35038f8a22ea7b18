"""Fresh random affine distortions of a batch, inside the jitted train step.

Cached augmentation (the preprocess stage) shows the network the same few distorted copies every
epoch; drawing new ones for every batch on the accelerator costs a bilinear resample of 28x28
pixels, which is small next to the convolutions, and keeps the host out of the loop.
"""

import jax
import jax.numpy as jnp

from stages.params import Distortion


def is_identity(strengths: Distortion) -> bool:
    return not any((strengths.rotation_deg, strengths.shift_px, strengths.scale, strengths.shear_deg))


def _matrices(key: jax.Array, n: int, strengths: Distortion) -> tuple[jax.Array, jax.Array]:
    """Per image, a 2x2 matrix mapping output to input coordinates (about the centre) and a shift."""
    k_rot, k_shear, k_scale, k_shift = jax.random.split(key, 4)
    rotation = jnp.deg2rad(strengths.rotation_deg) * jax.random.uniform(k_rot, (n,), minval=-1, maxval=1)
    shear = jnp.deg2rad(strengths.shear_deg) * jax.random.uniform(k_shear, (n,), minval=-1, maxval=1)
    zoom = 1 + strengths.scale * jax.random.uniform(k_scale, (n,), minval=-1, maxval=1)
    shift = strengths.shift_px * jax.random.uniform(k_shift, (n, 2), minval=-1, maxval=1)
    cos, sin = jnp.cos(rotation), jnp.sin(rotation)
    # (row, col) coordinates: rotate, then shear rows along columns, then zoom; invert the zoom
    # because the matrix maps each output pixel back to where it samples the input.
    rotate = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
    shear_m = jnp.stack(
        [jnp.stack([jnp.ones(n), jnp.zeros(n)], -1), jnp.stack([jnp.tan(shear), jnp.ones(n)], -1)], -2
    )
    matrix = (rotate @ shear_m) / zoom[:, None, None]
    return matrix, shift


def random_affine(key: jax.Array, images: jax.Array, strengths: Distortion) -> jax.Array:
    """Distorts float images (B, H, W) by independent random affine maps, bilinear, zero outside."""
    n, height, width = images.shape
    matrix, shift = _matrices(key, n, strengths)
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2])
    rows, cols = jnp.meshgrid(jnp.arange(height, dtype=images.dtype), jnp.arange(width, dtype=images.dtype), indexing="ij")
    grid = jnp.stack([rows, cols], -1) - centre  # (H, W, 2)
    source = jnp.einsum("nij,hwj->nhwi", matrix, grid) + centre - shift[:, None, None, :]

    def sample(image, coords):
        return jax.scipy.ndimage.map_coordinates(image, [coords[..., 0], coords[..., 1]], order=1, mode="constant")

    return jax.vmap(sample)(images, source)
