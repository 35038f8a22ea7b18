"""The training core: schedules, epoch order, the pure train step for every model, and sharding."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import yaml

from mnist_dvc.config.params import NEURAL_MODELS, Train
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.training.step import epoch_order, init_state, make_optimizer, make_train_step, schedule


@pytest.fixture(scope="module")
def cfg(repo_root) -> Train:
    """The shipped train params, made quick and plain: constant rate, no smoothing or augmentation."""
    shipped = Train.model_validate(yaml.safe_load((repo_root / "params.yaml").read_text())["train"])
    return shipped.model_copy(update={
        "width": 8, "schedule": "constant", "learning_rate": 0.003, "label_smoothing": 0.0,
        "augment": shipped.augment.model_copy(update={"rotation_deg": 0.0, "shift_px": 0.0, "scale": 0.0, "shear_deg": 0.0}),
    })


@pytest.fixture(scope="module")
def batch(mnist_train):
    images, labels = mnist_train
    return images[:64], labels[:64].astype(np.int32)


@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_one_train_step_reduces_the_loss(name, cfg, batch):
    tx = make_optimizer(cfg, total_steps=10)
    graphdef, _, state = init_state(build_model(name, width=cfg.width, rngs=init_rngs(0)), tx, seed=0)
    step = jax.jit(make_train_step(graphdef, tx, cfg))
    state, (before, _) = step(state, batch)  # the loss of the initial weights, then one update
    state, (after, _) = step(state, batch)
    assert np.isfinite(before) and after < before
    assert int(state.step) == 2


def test_bfloat16_runs_on_the_cpu_learns_and_keeps_float32_weights(cfg, batch):
    bf16 = cfg.model_copy(update={"precision": "bfloat16"})
    tx = make_optimizer(bf16, total_steps=10)
    graphdef, _, state = init_state(build_model("vgg_bn", width=bf16.width, rngs=init_rngs(0)), tx, seed=0)
    step = jax.jit(make_train_step(graphdef, tx, bf16))
    state, (before, _) = step(state, batch)
    for _ in range(3):
        state, (after, _) = step(state, batch)
    assert np.isfinite(before) and after < before
    assert {leaf.dtype for leaf in jax.tree.leaves(state.params) + jax.tree.leaves(state.rest) if leaf.dtype != np.uint32} == {np.dtype(np.float32)}


def test_ema_equals_the_weights_when_its_decay_is_zero(cfg, batch):
    tx = make_optimizer(cfg, total_steps=10)
    graphdef, _, state = init_state(build_model("vgg_bn", width=8, rngs=init_rngs(0)), tx, seed=0)
    state, _ = jax.jit(make_train_step(graphdef, tx, cfg))(state, batch)
    jax.tree.map(np.testing.assert_array_equal, state.ema, state.params)


def test_onecycle_warms_up_to_the_peak_and_anneals(cfg):
    lr = schedule(cfg.model_copy(update={"schedule": "onecycle", "warmup_fraction": 0.25}), 100)
    assert lr(0) < cfg.learning_rate / 10
    assert lr(25) == pytest.approx(cfg.learning_rate)
    assert lr(100) < cfg.learning_rate / 1000


def test_cosine_warms_up_and_ends_at_zero(cfg):
    lr = schedule(cfg.model_copy(update={"schedule": "cosine", "warmup_fraction": 0.1}), 100)
    assert lr(0) == 0 and lr(10) == pytest.approx(cfg.learning_rate) and lr(100) == pytest.approx(0)


def test_epoch_order_is_a_seeded_permutation_without_the_tail():
    order = np.asarray(epoch_order(jax.random.key(0), 1000, 128))
    assert order.shape == (7, 128)
    assert len(np.unique(order)) == order.size and order.max() < 1000
    np.testing.assert_array_equal(order, epoch_order(jax.random.key(0), 1000, 128))
    assert not np.array_equal(order, epoch_order(jax.random.key(1), 1000, 128))


SHARDED_RUN = """
import json, jax, numpy as np, yaml
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.config.params import Train
from mnist_dvc.training.step import Trainer
cfg = Train.model_validate(yaml.safe_load(open("params.yaml"))["train"]).model_copy(update={"width": 8, "batch_size": 32, "epochs": 1})
rng = np.random.default_rng(0)
images, labels = rng.integers(0, 256, (256, 28, 28), dtype=np.uint8), rng.integers(0, 10, 256).astype(np.int32)
trainer = Trainer(build_model("vgg_bn", width=8, rngs=init_rngs(0)), cfg, (images, labels), 8)
losses = [float(loss) for state, loss, _ in trainer.epoch_steps(trainer.initial_state, 1)]
print(json.dumps({"devices": len(jax.devices()), "losses": losses}))
"""


def run_on_cpu_devices(repo_root, count: int) -> dict:
    env = {**os.environ, "JAX_NUM_CPU_DEVICES": str(count), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SHARDED_RUN], cwd=repo_root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_batches_shard_over_four_devices_with_the_same_result(repo_root):
    one, four = run_on_cpu_devices(repo_root, 1), run_on_cpu_devices(repo_root, 4)
    assert (one["devices"], four["devices"]) == (1, 4)
    np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-4)
