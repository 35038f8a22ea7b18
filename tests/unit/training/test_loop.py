"""The training loop: epochs of steps with a history row each, a callback after every step,
stopping at a non-finite loss (worded as one line naming what ran), and resuming from a checkpoint
to exactly the weights of a run that never stopped, only in the run whose fingerprint wrote it."""

import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io import checkpoint
from mnist_dvc.training.loop import (
    HISTORY_COLUMNS,
    NonFiniteLoss,
    build_trainer,
    fingerprint,
    fit,
    fit_resumable,
    report_divergence,
    restore,
    run_epoch,
)
from mnist_dvc.training.step import Trainer

STEPS = 8  # per epoch: 256 training images in batches of 32


@pytest.fixture(scope="module")
def data(mnist_train):
    images, labels = mnist_train
    return (images[:256], labels[:256]), (images[256:320], labels[256:320])


@pytest.fixture(scope="module")
def trainer(train_params, data) -> Trainer:
    """A small vgg_bn run of two epochs, with the shipped schedule and in-step augmentation."""
    return build_trainer(train_params(model="vgg_bn", width=4, epochs=2, batch_size=32), data[0])


def fresh(trainer: Trainer):
    """A copy of the initial state: a step donates the state it is given, and the trainer's own is
    still needed as the template of `restore`."""
    return jax.tree.map(jnp.copy, trainer.initial_state)


def same_state(a, b) -> None:
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))


def without_seconds(history: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def test_a_trainer_takes_every_whole_batch_per_epoch_unless_told(train_params, data):
    cfg = train_params(width=8, batch_size=64)
    assert build_trainer(cfg, data[0]).steps_per_epoch == 4  # 256 digits
    assert build_trainer(cfg, data[0], steps_per_epoch=7).steps_per_epoch == 7


def test_fit_runs_every_epoch_and_reports_each_one(trainer, data, capsys):
    reported = []
    state, history = fit(trainer, fresh(trainer), [], 1, data[1],
                         after_epoch=lambda epoch, state, history: reported.append((epoch, int(state.step), len(history))))
    assert reported == [(1, STEPS, 1), (2, 2 * STEPS, 2)]  # after each epoch, its row already in the history
    assert [row["epoch"] for row in history] == [1, 2] and all(list(row) == list(HISTORY_COLUMNS) for row in history)
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert all(0 <= row[key] <= 1 for row in history for key in ("train_accuracy", "val_accuracy"))
    assert int(state.step) == 2 * STEPS
    out = capsys.readouterr().out
    assert "epoch 1/2: train loss" in out and "epoch 2/2: train loss" in out


def test_after_step_sees_every_step_once_numbered_from_the_start_of_the_run(trainer):
    seen = []
    state, loss, accuracy = run_epoch(trainer, fresh(trainer), 1, after_step=lambda step, state: seen.append((step, int(state.step))))
    run_epoch(trainer, state, 2, after_step=lambda step, state: seen.append((step, int(state.step))))
    assert seen == [(step, step) for step in range(1, 2 * STEPS + 1)]  # and the state it gets is that step's
    assert np.isfinite(loss) and 0 <= accuracy <= 1


def test_a_resumed_run_ends_with_the_weights_of_one_that_never_stopped(trainer, data, tmp_path, capsys):
    uninterrupted, full_history = fit(trainer, fresh(trainer), [], 1, data[1], after_epoch=lambda *_: None)

    path, run_id = tmp_path / "last.msgpack", "this run"

    def save(epoch, state, history):
        checkpoint.save(path, jax.device_get(state), {"fingerprint": run_id, "epoch": epoch, "history": json.dumps(history)})

    def save_then_stop(epoch, state, history):
        save(epoch, state, history)
        raise KeyboardInterrupt  # killed after the checkpoint of epoch 1

    with pytest.raises(KeyboardInterrupt):
        fit(trainer, fresh(trainer), [], 1, data[1], after_epoch=save_then_stop)
    state, history, first_epoch = restore(trainer, [path], run_id)
    assert first_epoch == 2 and without_seconds(history) == without_seconds(full_history[:1])
    assert f"resuming after epoch 1 from {path}" in capsys.readouterr().out
    resumed, resumed_history = fit(trainer, state, history, first_epoch, data[1], after_epoch=save)
    same_state(resumed, uninterrupted)
    assert without_seconds(resumed_history) == without_seconds(full_history)


def test_a_checkpoint_of_another_run_or_a_damaged_one_is_ignored(trainer, tmp_path, capsys):
    path = tmp_path / "last.msgpack"
    assert restore(trainer, [path], "this run") == (trainer.initial_state, [], 1)  # none yet
    checkpoint.save(path, jax.device_get(trainer.initial_state), {"fingerprint": "another run", "epoch": 1, "history": "[]"})
    state, history, first_epoch = restore(trainer, [path], "this run")
    assert (history, first_epoch) == ([], 1)
    same_state(state, trainer.initial_state)
    assert f"ignoring {path}: it was trained with other params or data" in capsys.readouterr().out
    path.write_bytes(b"\x00" * 100)
    state, history, first_epoch = restore(trainer, [path], "this run")
    assert (history, first_epoch) == ([], 1)
    assert f"ignoring the checkpoint: {path}: corrupt" in capsys.readouterr().out


def test_of_two_checkpoints_of_the_run_the_furthest_resumes_and_others_runs_are_ignored(trainer, tmp_path, capsys):
    """The stage's DVC output (reset by DVC to the baseline's) and the unfinished-run copy beside the project."""
    outs, unfinished, elsewhere = tmp_path / "outs.msgpack", tmp_path / "unfinished.msgpack", tmp_path / "other.msgpack"
    weights = jax.device_get(trainer.initial_state)
    checkpoint.save(outs, weights, {"fingerprint": "the baseline", "epoch": 3, "history": "[]"})
    checkpoint.save(elsewhere, weights, {"fingerprint": "this run", "epoch": 1, "history": "[]"})
    checkpoint.save(unfinished, weights, {"fingerprint": "this run", "epoch": 2, "history": "[]"})
    _, _, first_epoch = restore(trainer, [outs, elsewhere, unfinished], "this run")
    assert first_epoch == 3
    assert f"resuming after epoch 2 from {unfinished}" in capsys.readouterr().out


def test_a_finished_run_leaves_no_unfinished_copy_behind(train_params, data, tmp_path):
    from mnist_dvc.config import paths

    cfg = train_params(epochs=1)
    fit_resumable(build_trainer(cfg, data[0]), data[1], tmp_path / "last.msgpack", "a finished run")
    assert (tmp_path / "last.msgpack").exists() and not (paths.RESUME / "a finished run.msgpack").exists()


def test_a_loss_that_blows_up_stops_the_epoch_before_anything_is_saved(train_params, data):
    cfg = train_params(model="flat_mlp", optimizer="sgd", schedule="constant", learning_rate=10.0, label_smoothing=0.0,
                       batch_size=32, epochs=2)
    blowing_up = build_trainer(cfg, data[0])
    saved = []
    with pytest.raises(NonFiniteLoss) as error:
        fit(blowing_up, blowing_up.initial_state, [], 1, data[1], after_epoch=lambda *args: saved.append(args))
    assert saved == []
    assert error.value.epoch == 1 and 1 <= error.value.step <= STEPS and not np.isfinite(error.value.value)
    assert str(error.value) == f"the loss became {error.value.value} at epoch 1, step {error.value.step}"


def test_the_fingerprint_changes_with_the_settings_and_with_the_data(tmp_path, train_params):
    train, val = tmp_path / "train.npz", tmp_path / "val.npz"
    train.write_bytes(b"train images")
    val.write_bytes(b"val images")
    cfg = train_params(epochs=2)
    first = fingerprint(cfg, [train, val])
    assert fingerprint(train_params(epochs=2), [train, val]) == first
    assert fingerprint(train_params(epochs=3), [train, val]) != first
    assert fingerprint(cfg, [train, val], fold=0) != fingerprint(cfg, [train, val], fold=1) != first
    val.write_bytes(b"other val images")
    assert fingerprint(cfg, [train, val]) != first


def test_the_fingerprint_of_a_run_is_the_one_its_checkpoints_were_written_with(tmp_path, train_params):
    """Checkpoints written before still resume: the train stage's run (and a committee member's) is
    identified by `cfg.model_dump_json()` alone, a run with more settings by sorted JSON of them all."""
    data = tmp_path / "train.npz"
    data.write_bytes(b"train images")
    cfg = train_params(epochs=2)
    assert fingerprint(cfg, [data]) == hashlib.sha256(cfg.model_dump_json().encode() + b"train images").hexdigest()
    settings = json.dumps({"train": cfg.model_dump(mode="json"), "fold": 3, "folds": 5}, sort_keys=True)
    assert fingerprint(cfg, [data], folds=5, fold=3) == hashlib.sha256(settings.encode() + b"train images").hexdigest()


def test_a_diverging_run_is_one_line_naming_what_ran_and_the_learning_rate(train_params):
    with pytest.raises(UserError, match=r"^fold 3: the loss became nan at epoch 2, step 7; lower train\.learning_rate \(now 10\.0\); "
                                        r"the checkpoint of the last good epoch is kept$"):
        with report_divergence("fold 3", train_params(learning_rate=10.0)):
            raise NonFiniteLoss(float("nan"), 2, 7)
    with pytest.raises(ZeroDivisionError), report_divergence("train", train_params()):  # a bug stays a bug
        1 / 0
