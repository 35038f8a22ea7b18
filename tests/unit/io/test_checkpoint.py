"""Checkpoint files: exact round trips (PRNG keys included) and clear errors for bad files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io import checkpoint


def tree():
    return {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(7), "key": jax.random.key(3, impl="rbg")}


def test_round_trip_is_exact(tmp_path):
    checkpoint.save(tmp_path / "c.msgpack", tree(), {"epoch": 2})
    restored, meta = checkpoint.load(tmp_path / "c.msgpack", jax.tree.map(jnp.zeros_like, tree()))
    assert meta == {"epoch": 2}
    np.testing.assert_array_equal(restored["w"], tree()["w"])
    assert int(restored["step"]) == 7
    np.testing.assert_array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(tree()["key"]))


def test_missing_corrupt_and_mismatched_files_are_user_errors(tmp_path):
    path = tmp_path / "c.msgpack"
    with pytest.raises(UserError, match="c.msgpack: not found"):
        checkpoint.load(path, tree())
    path.write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(UserError, match="c.msgpack: corrupt"):
        checkpoint.load(path, tree())
    checkpoint.save(path, tree(), {})
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="c.msgpack: corrupt"):
        checkpoint.load(path, tree())
    checkpoint.save(path, {"w": jnp.zeros((3, 3))}, {})
    with pytest.raises(UserError, match=r"holds 1 arrays, but this model needs 3"):
        checkpoint.load(path, tree())
    checkpoint.save(path, {"w": jnp.zeros((3, 3)), "step": jnp.int32(0), "key": jax.random.key(0, impl="rbg")}, {})
    with pytest.raises(UserError, match=r"array \d is float32\[3, 3\], but this model needs float32\[2, 3\]"):
        checkpoint.load(path, tree())
    checkpoint.save(path, {**tree(), "key": jax.random.key(0, impl="threefry2x32")}, {})
    with pytest.raises(UserError, match=r"array \d is uint32\[2\], but this model needs uint32\[4\]"):
        checkpoint.load(path, tree())
