"""Run by tests/app/test_distributed.py, as one process or as several under `mnist-dvc launch`: trains
the model of params.yaml's train section (here small) for one epoch on the digits in ARGV[1] and,
in the first process, saves the trained weights to ARGV[2]."""

import os
import sys

import numpy as np

from mnist_dvc.training.distributed import start_if_asked

start_if_asked(os.environ)

from mnist_dvc.config.params import load_params  # noqa: E402
from mnist_dvc.training.distributed import is_writer, to_host  # noqa: E402
from mnist_dvc.training.loop import build_trainer, run_epoch  # noqa: E402

cfg = load_params("train")
with np.load(sys.argv[1]) as data:
    images, labels = data["images"], data["labels"]
trainer = build_trainer(cfg, (images, labels))
state, _, _ = run_epoch(trainer, trainer.initial_state, 1)
if is_writer():
    leaves = [np.asarray(leaf) for leaf in __import__("jax").tree.leaves(to_host(state.params))]
    np.savez(sys.argv[2], *leaves)
