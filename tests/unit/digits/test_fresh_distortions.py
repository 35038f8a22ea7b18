"""Random affine distortions inside the train step: shapes, seeding, and that each one is sane."""

import jax
import jax.numpy as jnp
import numpy as np

from mnist_dvc.config.params import Distortion
from mnist_dvc.digits.fresh_distortions import is_identity, random_affine

NONE = Distortion(rotation_deg=0.0, shift_px=0.0, scale=0.0, shear_deg=0.0)


def square(n=4):
    images = np.zeros((n, 28, 28), np.float32)
    images[:, 10:18, 12:16] = 1.0
    return jnp.asarray(images)


def test_zero_strengths_are_the_identity():
    assert is_identity(NONE)
    np.testing.assert_allclose(random_affine(jax.random.key(0), square(), NONE), square(), atol=1e-6)


def test_same_key_same_output_other_key_other_output():
    strengths = Distortion(rotation_deg=15.0, shift_px=2.0, scale=0.1, shear_deg=10.0)
    a = random_affine(jax.random.key(0), square(), strengths)
    b = random_affine(jax.random.key(0), square(), strengths)
    c = random_affine(jax.random.key(1), square(), strengths)
    assert a.shape == (4, 28, 28) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_shifts_move_the_ink_by_at_most_the_strength():
    shifted = random_affine(jax.random.key(0), square(64), NONE.model_copy(update={"shift_px": 2.0}))
    rows, cols = np.arange(28)[:, None], np.arange(28)[None, :]
    mass = shifted.sum(axis=(1, 2))
    centre_row = (shifted * rows).sum(axis=(1, 2)) / mass
    centre_col = (shifted * cols).sum(axis=(1, 2)) / mass
    np.testing.assert_allclose(mass, 32.0, rtol=1e-4)  # bilinear shifts keep the ink inside the frame
    assert np.all(np.abs(centre_row - 13.5) <= 2.0 + 1e-4) and np.all(np.abs(centre_col - 13.5) <= 2.0 + 1e-4)
    assert np.std(centre_col) > 0.5  # and the shifts really differ from image to image


def test_rotation_keeps_the_ink_roughly():
    rotated = random_affine(jax.random.key(0), square(16), NONE.model_copy(update={"rotation_deg": 30.0}))
    np.testing.assert_allclose(rotated.sum(axis=(1, 2)), 32.0, rtol=0.1)
