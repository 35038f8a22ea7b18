"""The exponential moving average of the weights (`train.ema_decay` > 0): the step keeps it, and
validation and the saved model use it, not the raw weights of the last step. (`ema_decay` 0, where
the two are the same: tests/unit/training/test_step.py.)"""

import jax
import numpy as np
import pytest
import yaml
from flax import nnx

from mnist_dvc.config import paths
from mnist_dvc.config.params import Train
from mnist_dvc.models.inference import neural_classifier
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import load_network
from mnist_dvc.training.distributed import to_host
from mnist_dvc.training.loop import build_trainer, run_epoch
from mnist_dvc.training.step import init_state, make_optimizer, make_train_step
from mnist_dvc.training.train_and_save import train_model

DECAY = 0.5  # reached after the warm-up's first 8 steps, so a few steps see both


@pytest.fixture(scope="module")
def cfg(repo_root) -> Train:
    """The shipped train params with the average on: a small flat_mlp, one epoch of 64-digit batches,
    at a constant rate: the weights move far from step to step, so their average is far from the last."""
    shipped = Train.model_validate(yaml.safe_load((repo_root / "params.yaml").read_text())["train"])
    return Train.model_validate({**shipped.model_dump(), "model": "flat_mlp", "width": 32, "epochs": 1, "batch_size": 64,
                                 "schedule": "constant", "learning_rate": 0.003, "ema_decay": DECAY})


def leaves(tree) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def test_the_average_follows_each_step_s_weights_with_a_decay_warming_up_to_ema_decay(cfg, mnist_train):
    """After step t (from 0) the average is d * itself + (1 - d) * the new weights, d = min(ema_decay,
    (1 + t) / (10 + t)), starting from the initial weights; it is not the weights themselves."""
    images, labels = mnist_train
    tx = make_optimizer(cfg, total_steps=12)
    graphdef, _, state = init_state(build_model(cfg.model, width=cfg.width, rngs=init_rngs(0)), tx, seed=0)
    step = jax.jit(make_train_step(graphdef, tx, cfg))
    expected = leaves(state.params)
    for t in range(12):
        batch = images[64 * t : 64 * (t + 1)], labels[64 * t : 64 * (t + 1)].astype(np.int32)
        state, _ = step(state, batch)
        decay = min(DECAY, (1 + t) / (10 + t))
        expected = [decay * average + (1 - decay) * weights for average, weights in zip(expected, leaves(state.params))]
    for found, wanted in zip(leaves(state.ema), expected, strict=True):
        np.testing.assert_allclose(found, wanted, rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - w).max() for a, w in zip(leaves(state.ema), leaves(state.params))) > 1e-4  # far beyond the tolerance above


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))


def test_validation_and_the_saved_model_use_the_average_not_the_last_weights(tmp_path, cfg, mnist_train):
    """The train stage's model and its validation score must be the averaged weights (the reason to keep
    them). The run is repeated here step for step, to hold its average and its last weights apart."""
    images, labels = mnist_train
    train, val = (images[:1024], labels[:1024]), (images[1024:1536], labels[1024:1536])  # 16 steps
    out = paths.TrainOutputs.under(tmp_path)
    summary = train_model(cfg, train, val, out, {"deskew": False, "stroke_width": None}, run_id="ema")

    trainer = build_trainer(cfg, train)
    state, _, _ = run_epoch(trainer, trainer.initial_state, 1)
    saved = load_network(out.model)
    for found, average, last in zip(leaves(nnx.state(saved, nnx.Param)), leaves(to_host(state.ema)), leaves(to_host(state.params)),
                                    strict=True):
        np.testing.assert_allclose(found, average, rtol=1e-5, atol=1e-6)
    assert max(np.abs(a - w).max() for a, w in zip(leaves(to_host(state.ema)), leaves(to_host(state.params)))) > 1e-4  # far beyond the tolerance above

    last = nnx.merge(trainer.eval_graphdef, to_host(state.params), to_host(state.rest))
    saved_loss = cross_entropy(neural_classifier(saved)(val[0]), val[1])
    last_loss = cross_entropy(neural_classifier(last)(val[0]), val[1])
    assert summary["val_loss"] == pytest.approx(saved_loss, abs=1e-5)  # the validation score is the saved model's
    assert abs(last_loss - saved_loss) > 1e-3  # and tells the last weights apart
