"""Random affine distortions inside the train step: shapes, seeding, and that each one is sane."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnist_dvc.config.params import Distortion
from mnist_dvc.digits.affine import sampling_matrices
from mnist_dvc.digits.fresh_distortions import is_identity, random_affine, warp

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


def moments(images) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per image, from its ink's first and second moments: the ink's mass, its centre (row, column),
    its long axis's angle from the vertical in degrees, and the spreads (variances) along its long and
    short axes."""
    images = np.asarray(images, np.float64)
    rows, cols = np.mgrid[:28, :28]
    mass = images.sum(axis=(1, 2))
    centre_row, centre_col = ((images * axis).sum(axis=(1, 2)) / mass for axis in (rows, cols))
    d_row, d_col = rows - centre_row[:, None, None], cols - centre_col[:, None, None]
    m_rr, m_cc, m_rc = ((images * a * b).sum(axis=(1, 2)) / mass for a, b in ((d_row, d_row), (d_col, d_col), (d_row, d_col)))
    angle = 0.5 * np.degrees(np.arctan2(2 * m_rc, m_rr - m_cc))
    half_gap = np.hypot((m_rr - m_cc) / 2, m_rc)
    return mass, np.stack([centre_row, centre_col], axis=1), angle, np.stack([(m_rr + m_cc) / 2 + half_gap, (m_rr + m_cc) / 2 - half_gap], axis=1)


SQUARE_SPREADS = (5.25, 1.25)  # the 8x4 bar's variances along its rows and its columns


def test_rotation_turns_the_ink_by_up_to_the_strength_and_keeps_its_mass_centre_and_shape():
    """The upright bar comes out turned by angles spread over [-30, 30] degrees (all 0 if the rotation were
    ignored), about the image's centre, neither stretched nor thinned beyond the blur of resampling."""
    rotated = random_affine(jax.random.key(0), square(64), NONE.model_copy(update={"rotation_deg": 30.0}))
    np.testing.assert_allclose(rotated.sum(axis=(1, 2)), 32.0, rtol=0.1)
    _, centre, angle, spreads = moments(rotated)
    assert np.all(np.abs(angle) <= 30.0 + 1.0)
    assert angle.min() < -20 and angle.max() > 20 and np.mean(np.abs(angle) > 5) > 0.75
    np.testing.assert_allclose(centre, 13.5, atol=0.01)  # a turn about the centre moves no ink's centre
    np.testing.assert_allclose(spreads, np.broadcast_to(SQUARE_SPREADS, spreads.shape), rtol=0.2)


@pytest.mark.parametrize("degrees", [5.0, 15.0, 30.0])
def test_a_rotation_by_an_angle_turns_the_ink_by_that_angle_either_way(degrees):
    """The warp the random draws go through, at known angles: the ink's long axis turns by the angle,
    to one side for +angle and to the other for -angle."""
    theta = np.deg2rad(np.array([0.0, degrees, -degrees], np.float32))
    matrices = sampling_matrices(jnp.asarray(theta), jnp.zeros(3), jnp.ones(3), xp=jnp)
    _, _, angle, _ = moments(warp(square(3), matrices, jnp.zeros((3, 2))))
    assert angle[0] == pytest.approx(0, abs=1e-3)
    assert abs(angle[1]) == pytest.approx(degrees, abs=1.0) and angle[2] == pytest.approx(-angle[1], abs=1e-2)
