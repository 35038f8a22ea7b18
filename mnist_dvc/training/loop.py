"""The training loop, shared by the train, retrain and fold stages and the benchmarks: a network's
`Trainer` (`build_trainer`), epochs of jit-compiled steps with a validation score after each
(`fit`), checkpointed after every epoch and resumed only by the very same run (`fit_resumable`,
the run its `fingerprint` identifies), and the per-epoch curves (`write_curves`). Every training
stage trains inside `report_divergence`, so that a loss that stops being finite reads the same in
each. Both live here rather than in `mnist_dvc.config.params`, which every stage imports, so that
changing them reruns the training stages only.

Losses are read back from the device every `REPORT_EVERY` steps only (reading waits for the
device), for the progress bar and to stop at the first non-finite loss before it spoils a
checkpoint.
"""

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from mnist_dvc.config import paths
from mnist_dvc.config.params import Train
from mnist_dvc.errors import UserError
from mnist_dvc.io import checkpoint
from mnist_dvc.io.atomic import write_csv
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.training.distributed import is_writer, to_global, to_host
from mnist_dvc.training.step import Trainer, TrainState

REPORT_EVERY = 20
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")


class NonFiniteLoss(Exception):
    """The loss became NaN or infinite; training stopped before saving anything of that epoch."""

    def __init__(self, value: float, epoch: int, step: int):
        super().__init__(f"the loss became {value} at epoch {epoch}, step {step}")
        self.value, self.epoch, self.step = value, epoch, step


def fingerprint(cfg: Train, data: Sequence[Path], **settings) -> str:
    """The run id of a training run, for `fit_resumable` to resume a checkpoint only in the run
    that made it: the SHA-256 of the run's settings as JSON, then of the bytes of its `data` files.

    The settings are `cfg` and, for a run that `cfg` does not describe alone (a fold of the audit,
    the second training's changed set), the JSON-able `settings` beside it: `{"train": cfg,
    **settings}` with sorted keys. `cfg` alone (the train stage, a committee member) is
    `cfg.model_dump_json()`, as these runs have always been identified: changing either form
    would make every checkpoint written before it train again from the start."""
    text = json.dumps({"train": cfg.model_dump(mode="json"), **settings}, sort_keys=True) if settings else cfg.model_dump_json()
    digest = hashlib.sha256(text.encode())
    for path in data:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@contextmanager
def report_divergence(where: str, cfg: Train) -> Iterator[None]:
    """Turns a `NonFiniteLoss` of the training run inside the block into the one line every
    training stage gives for it: `where` is what ran ("train", "retrain", "fold 3", a committee
    member's command), the error says when, and the key to change is train.learning_rate."""
    try:
        yield
    except NonFiniteLoss as error:
        raise UserError(f"{where}: {error}; lower train.learning_rate (now {cfg.learning_rate}); "
                        "the checkpoint of the last good epoch is kept") from None


def restore(trainer: Trainer, candidates: Sequence[Path], run_id: str) -> tuple[TrainState, list[dict], int]:
    """(state, history, first epoch to run): from the checkpoint among `candidates` that `run_id` made
    and that got furthest, else fresh. Every process of a multi-process run reads the same file (the
    first one writes it)."""
    found = None
    for path in candidates:
        if not path.exists():
            continue
        try:
            state, meta = checkpoint.load(path, to_host(trainer.initial_state))
        except UserError as error:
            print(f"ignoring the checkpoint: {error}")
            continue
        if meta.get("fingerprint") != run_id:
            print(f"ignoring {path}: it was trained with other params or data")
        elif found is None or int(meta["epoch"]) > int(found[1]["epoch"]):
            found = (state, meta, path)
    if found is None:
        return trainer.initial_state, [], 1
    state, meta, path = found
    print(f"resuming after epoch {meta['epoch']} from {path}")
    return to_global(state, trainer.replicated), json.loads(meta["history"]), int(meta["epoch"]) + 1


def run_epoch(trainer: Trainer, state: TrainState, epoch: int,
              after_step: Callable[[int, TrainState], None] | None = None) -> tuple[TrainState, float, float]:
    """Trains epoch `epoch`; returns (state, mean loss, accuracy on the training batches).

    `after_step(step, state)`, if given, is called after every step (steps counted from the
    start of the run), with the state still on the device. Raises `NonFiniteLoss`.
    """
    steps, cfg = trainer.steps_per_epoch, trainer.cfg
    first_step = (epoch - 1) * steps
    losses, correct, pending = [], 0, []
    with tqdm(total=steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False) as bar:
        for step, (state, loss, step_correct) in enumerate(trainer.epoch_steps(state, epoch), 1):
            if after_step:
                after_step(first_step + step, state)
            pending.append((loss, step_correct))
            if len(pending) < REPORT_EVERY and step < steps:
                continue
            chunk = np.array([float(to_host(value)) for value, _ in pending])
            bad = np.flatnonzero(~np.isfinite(chunk))
            if bad.size:
                raise NonFiniteLoss(float(chunk[bad[0]]), epoch, step - len(chunk) + int(bad[0]) + 1)
            losses.extend(chunk)
            correct += sum(int(to_host(value)) for _, value in pending)
            bar.update(len(chunk))
            bar.set_postfix(loss=f"{chunk.mean():.4f}")
            pending = []
    return state, float(np.mean(losses)), correct / (steps * cfg.batch_size)


def fit(trainer: Trainer, state: TrainState, history: list[dict], first_epoch: int, val: tuple,
        after_epoch: Callable[[int, TrainState, list[dict]], None]) -> tuple[TrainState, list[dict]]:
    """Runs epochs `first_epoch`..`cfg.epochs`, appending one row of `HISTORY_COLUMNS` per epoch to
    `history` (validation scored with the weights that will be saved), and calls
    `after_epoch(epoch, state, history)` after each, to checkpoint. Returns (state, history)."""
    cfg, images_per_epoch = trainer.cfg, trainer.steps_per_epoch * trainer.cfg.batch_size
    for epoch in range(first_epoch, cfg.epochs + 1):
        start = time.perf_counter()
        state, train_loss, train_accuracy = run_epoch(trainer, state, epoch)
        val_loss, val_accuracy = trainer.evaluate(state, *val)
        seconds = time.perf_counter() - start
        history.append({
            "epoch": epoch, "train_loss": round(train_loss, 6), "train_accuracy": round(train_accuracy, 6),
            "val_loss": round(val_loss, 6), "val_accuracy": round(val_accuracy, 6), "seconds": round(seconds, 2),
        })
        print(f"epoch {epoch}/{cfg.epochs}: train loss {train_loss:.4f} acc {train_accuracy:.4f}, "
              f"val loss {val_loss:.4f} acc {val_accuracy:.4f}, {seconds:.1f} s, {images_per_epoch / seconds:,.0f} images/s")
        after_epoch(epoch, state, history)
    return state, history


def build_trainer(cfg: Train, train: tuple, steps_per_epoch: int | None = None) -> Trainer:
    """A `mnist_dvc.training.step.Trainer` of a fresh `cfg.model` network (width `cfg.width`, initialised
    from `cfg.seed`) on `train` ((images, labels)), with `steps_per_epoch` steps of `cfg.batch_size`:
    by default as many whole batches as `train` holds."""
    steps = len(train[1]) // cfg.batch_size if steps_per_epoch is None else steps_per_epoch
    return Trainer(build_model(cfg.model, width=cfg.width, rngs=init_rngs(cfg.seed)), cfg, train, steps)


def fit_resumable(trainer: Trainer, val: tuple, checkpoint_path: Path, run_id: str) -> tuple[TrainState, list[dict]]:
    """(final state, history: one row of `mnist_dvc.training.loop.HISTORY_COLUMNS` per epoch) of `trainer`
    trained to its `cfg.epochs`, watched on `val` ((images, labels)).

    After every epoch it checkpoints (the first process only) twice: to `checkpoint_path`, the stage's
    DVC output, which `dvc push` shares and `dvc repro` keeps (persist), and to `paths.RESUME`/<run_id>,
    which DVC never touches, so that a killed `dvc exp run`, whose outputs DVC resets to the baseline's
    before the next try (or which ran in a folder of its own), resumes too. It resumes from whichever of
    the two `run_id` made got further, and removes the second once the run is complete. Raises
    `mnist_dvc.training.loop.NonFiniteLoss` when the loss stops being finite; the checkpoints of the
    last good epoch are kept.
    """
    unfinished = paths.RESUME / f"{run_id}.msgpack"

    def save_checkpoint(epoch, state, history):
        if is_writer():
            meta = {"fingerprint": run_id, "epoch": epoch, "history": json.dumps(history)}
            for path in (checkpoint_path, unfinished):
                checkpoint.save(path, to_host(state), meta)

    state, history, first_epoch = restore(trainer, [checkpoint_path, unfinished], run_id)
    state, history = fit(trainer, state, history, first_epoch, val, after_epoch=save_checkpoint)
    if is_writer():
        unfinished.unlink(missing_ok=True)
    return state, history


def write_curves(path: Path, history: list[dict]) -> None:
    """The per-epoch curves, one row of `mnist_dvc.training.loop.HISTORY_COLUMNS` per epoch, as CSV (for `dvc plots`)."""
    write_csv(path, pd.DataFrame(history).reindex(columns=HISTORY_COLUMNS))
