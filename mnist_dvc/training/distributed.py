"""One training run over several cooperating processes (JAX's multi-controller runtime): starting
it, laying host arrays out over the global device mesh, and reading them back.

Every process runs the same program on its own devices; `jax.distributed.initialize` connects
them (the coordinator's address, the number of processes and this one's id, or whatever it
detects by itself on Slurm, Open MPI and TPU pods). Arrays then span every process's devices:
each process hands in its own part (`to_global`) and reads back what it holds (`to_host`, for
arrays every process holds whole). One process alone is the same code with one participant.
"""

from collections.abc import Mapping

import jax
import numpy as np

# Seconds without a heartbeat after which the coordination service declares a process dead and
# stops the others with an error, instead of letting them wait for it for ever.
HEARTBEAT_TIMEOUT_S = 30
INITIALIZATION_TIMEOUT_S = 120


def start(coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None) -> None:
    """Joins this process to a multi-process run, before any other JAX call; None lets JAX detect
    the settings on a cluster. CPU devices talk through gloo (JAX's default offers none on CPU)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=INITIALIZATION_TIMEOUT_S, heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)


def start_if_asked(environ: Mapping[str, str]) -> None:
    """Joins a multi-process run when `environ` (the caller's environment) describes one, before
    any other JAX call: JAX's own variables (what `mnist-dvc launch` sets), or a Slurm job step of
    several tasks (`srun -n N python -m stages.train`), where JAX detects the rest by itself."""
    if "JAX_COORDINATOR_ADDRESS" in environ:
        start(environ["JAX_COORDINATOR_ADDRESS"], int(environ["JAX_NUM_PROCESSES"]), int(environ["JAX_PROCESS_ID"]))
    elif int(environ.get("SLURM_NTASKS", "1")) > 1:
        start()


def is_writer() -> bool:
    """Whether this process writes the run's files: the first one; the others only compute."""
    return jax.process_index() == 0


def _is_key(leaf) -> bool:
    return hasattr(leaf, "dtype") and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def to_global(tree, sharding):
    """Every leaf of `tree` (this process's part of it, on the host or a local device) as a global
    array laid out by `sharding`: for a replicated sharding each process hands in the whole value,
    for one split over devices its own rows, in process order (`jax.make_array_from_process_local_data`)."""

    def one(leaf):
        if _is_key(leaf):
            data = one(jax.random.key_data(leaf))
            return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=jax.random.key_impl(leaf)), out_shardings=sharding)(data)
        return jax.make_array_from_process_local_data(sharding, np.asarray(leaf))

    return jax.tree.map(one, tree)


def to_host(tree):
    """Every leaf of `tree`, a global array that each process holds whole (replicated), as this
    process's numpy copy (PRNG keys as keys on the default device)."""

    def one(leaf):
        if _is_key(leaf):
            return jax.random.wrap_key_data(one(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        return np.asarray(leaf.addressable_data(0))

    return jax.tree.map(one, tree)
