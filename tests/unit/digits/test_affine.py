"""The one affine distortion shared by the cached copies (numpy, `cached_distortions.warp`) and the
in-step ones (JAX, `fresh_distortions.warp`): the same matrices and shifts give the same digits, and
the parameters mean what they say."""

import jax.numpy as jnp
import numpy as np
import pytest

from mnist_dvc.digits import cached_distortions, fresh_distortions
from mnist_dvc.digits.affine import sampling_matrices
from mnist_dvc.io.idx import read_split


@pytest.fixture(scope="module")
def digits(mnist_mirror) -> np.ndarray:
    images, _ = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    return images[:100]


def matrices(n: int, rotation_deg: float = 0.0, shear_deg: float = 0.0, zoom: float = 1.0) -> np.ndarray:
    return sampling_matrices(np.full(n, np.deg2rad(rotation_deg)), np.full(n, np.tan(np.deg2rad(shear_deg))),
                             np.full(n, zoom)).astype(np.float32)


def both_warps(images: np.ndarray, m: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the cached copies' uint8 result, the train step's float result rounded to grey levels)."""
    cached = cached_distortions.warp(images, m, shifts)
    in_step = fresh_distortions.warp(jnp.asarray(images, jnp.float32), jnp.asarray(m), jnp.asarray(shifts))
    return cached, np.clip(np.rint(np.asarray(in_step)), 0, 255).astype(np.uint8)


def test_zero_strengths_are_the_identity(digits):
    n = len(digits)
    m = sampling_matrices(np.zeros(n), np.zeros(n), np.ones(n))
    np.testing.assert_array_equal(m, np.broadcast_to(np.eye(2), (n, 2, 2)))
    cached, in_step = both_warps(digits, m.astype(np.float32), np.zeros((n, 2), np.float32))
    np.testing.assert_array_equal(cached, digits)
    np.testing.assert_array_equal(in_step, digits)


def test_cached_and_in_step_distortions_draw_the_same_digit(digits):
    n = len(digits)
    m = matrices(n, rotation_deg=20.0, shear_deg=10.0, zoom=1.1)
    shifts = np.tile(np.float32([1.5, -2.25]), (n, 1))
    cached, in_step = both_warps(digits, m, shifts)
    assert np.mean(cached != digits) > 0.1  # a real distortion, not the identity
    difference = np.abs(cached.astype(int) - in_step.astype(int))
    assert difference.max() <= 1  # rounding of the bilinear mix, at most
    assert np.mean(difference > 0) < 0.001


def test_the_same_holds_for_a_different_random_distortion_per_digit(digits):
    rng = np.random.default_rng(0)
    n = len(digits)
    m = sampling_matrices(np.deg2rad(rng.uniform(-30, 30, n)), np.tan(np.deg2rad(rng.uniform(-20, 20, n))),
                          rng.uniform(0.8, 1.2, n)).astype(np.float32)
    shifts = rng.uniform(-3, 3, (n, 2)).astype(np.float32)
    cached, in_step = both_warps(digits, m, shifts)
    difference = np.abs(cached.astype(int) - in_step.astype(int))
    assert difference.max() <= 1 and np.mean(difference > 0) < 0.001


def test_a_shift_moves_the_digit_down_and_right_by_whole_pixels(digits):
    n = len(digits)
    for warped in both_warps(digits, matrices(n), np.tile(np.float32([2, -3]), (n, 1))):
        np.testing.assert_array_equal(warped[:, 2:, :-3], digits[:, :-2, 3:])  # two rows down, three columns left
        assert not warped[:, :2].any() and not warped[:, :, -3:].any()  # what moved in is blank


def test_a_quarter_turn_is_a_quarter_turn_counter_clockwise(digits):
    n = len(digits)
    for warped in both_warps(digits, matrices(n, rotation_deg=90.0), np.zeros((n, 2), np.float32)):
        np.testing.assert_array_equal(warped, np.rot90(digits, k=1, axes=(1, 2)))


def test_a_zoom_above_one_enlarges_the_digit(digits):
    n = len(digits)
    for warped in both_warps(digits, matrices(n, zoom=1.2), np.zeros((n, 2), np.float32)):
        ink = (warped > 0).sum(axis=(1, 2)) / (digits > 0).sum(axis=(1, 2))
        assert np.all(ink > 1.2)  # the inked area grows by about 1.2 ** 2
