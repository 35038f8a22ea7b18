"""Saving and restoring pytrees of arrays (models, training state) as one msgpack file.

One file written atomically is all a per-epoch checkpoint needs: it is either the last complete
epoch or absent. Flax's msgpack serialization stores the arrays; the pytree's structure comes
from a template built by the same code, so a file from another model or version is rejected
with a clear message instead of being misread. PRNG keys travel as their raw key data.
"""

from pathlib import Path

import jax
import numpy as np
from flax import serialization

from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import write_bytes


def _is_key(leaf) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save(path: str | Path, tree, meta: dict) -> None:
    """Writes the leaves of `tree` and a small JSON-able `meta` dict to `path`, atomically."""
    leaves = [np.asarray(jax.random.key_data(x) if _is_key(x) else x) for x in jax.tree.leaves(tree)]
    payload = {"meta": meta, "leaves": {str(i): leaf for i, leaf in enumerate(leaves)}}
    write_bytes(path, serialization.msgpack_serialize(payload))


def load(path: str | Path, template):
    """Returns (tree shaped like `template`, meta); a missing, corrupt or mismatched file is a UserError."""
    path = Path(path)
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        meta, stored = payload["meta"], payload["leaves"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the stage that writes it first (dvc repro)") from None
    except Exception as error:  # msgpack raises many types for damaged bytes
        raise UserError(f"{path}: corrupt or not a checkpoint of this project ({type(error).__name__})") from None
    expected, treedef = jax.tree.flatten(template)
    if len(stored) != len(expected):
        raise UserError(f"{path}: holds {len(stored)} arrays, but this model needs {len(expected)}")
    leaves = []
    for i, want in enumerate(expected):
        got = np.asarray(stored[str(i)])
        need = jax.random.key_data(want) if _is_key(want) else want
        if got.shape != need.shape or got.dtype != need.dtype:
            raise UserError(
                f"{path}: array {i} is {got.dtype}{list(got.shape)}, but this model needs {need.dtype}{list(need.shape)}"
            )
        leaves.append(jax.random.wrap_key_data(got, impl=jax.random.key_impl(want)) if _is_key(want) else got)
    return jax.tree.unflatten(treedef, leaves), meta
