"""Run by tests/app/test_distributed.py, as one process or as several under `mnist-dvc launch`: trains
the model of params.yaml's train section (here small) for one epoch on the digits in ARGV[1] and,
in the first process, saves the trained weights to ARGV[2].

Every process also writes what it took part in to ARGV[2] with `.process-<its index>.json` appended:
its index, the number of processes and of devices in the run and on its own host, so the test can
tell processes that joined one run from processes that each trained alone (on all the digits, the
weights alone would not show it)."""

import json
import os
import sys

import numpy as np

from mnist_dvc.training.distributed import start_if_asked

start_if_asked(os.environ)

import jax  # noqa: E402

from mnist_dvc.config.params import load_params  # noqa: E402
from mnist_dvc.training.distributed import is_writer, to_host  # noqa: E402
from mnist_dvc.training.loop import build_trainer, run_epoch  # noqa: E402

cfg = load_params("train")
with np.load(sys.argv[1]) as data:
    images, labels = data["images"], data["labels"]
trainer = build_trainer(cfg, (images, labels))
state, _, _ = run_epoch(trainer, trainer.initial_state, 1)
run = {"process_index": jax.process_index(), "process_count": jax.process_count(), "device_count": jax.device_count(),
       "local_device_count": jax.local_device_count(), "mesh_devices": trainer.batch_sharding.mesh.size}
with open(f"{sys.argv[2]}.process-{jax.process_index()}.json", "w") as out:
    json.dump(run, out)
if is_writer():
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(to_host(state.params))]
    np.savez(sys.argv[2], *leaves)
