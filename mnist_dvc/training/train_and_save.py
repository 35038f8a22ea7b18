"""One model trained end to end and written out, for the train stage and the second training
(stages/retrain.py): fit (or resume), save the model folder, write the curves and the metrics.

Neural models train with `mnist_dvc.training.loop` (jit-compiled steps, data-parallel over every device JAX
sees), checkpointing the whole training state after each epoch, so a killed run resumes where it
stopped and ends with the same weights as one that never stopped; a checkpoint is resumed only by
the run whose `run_id` (`mnist_dvc.training.loop.fingerprint` of its settings and data) made it. Scikit-learn
baselines (`mnist_dvc.models.classical`) fit in one go. In a multi-process run every process computes and
only the first writes.
"""

import time

import numpy as np

from mnist_dvc.config import paths
from mnist_dvc.config.params import CLASSICAL_MODELS, Train
from mnist_dvc.io.atomic import atomic_dir, write_json


def write_history(out: paths.TrainOutputs, history: list[dict], summary: dict) -> dict:
    """The per-epoch curves (`mnist_dvc.training.loop.write_curves`) and the run's summary metrics; returns the summary."""
    from mnist_dvc.training.loop import write_curves

    write_curves(out.history, history)
    write_json(out.metrics, summary)
    return summary


def train_classical(cfg: Train, train: tuple, val: tuple, out: paths.TrainOutputs, preparation: dict) -> dict:
    from mnist_dvc.analysis.metrics import summarize
    from mnist_dvc.models import classical
    from mnist_dvc.models.saved import save_classical

    start = time.perf_counter()
    estimator = classical.fit(cfg.model, *train, seed=cfg.seed, **cfg.classical.model_dump())
    seconds = round(time.perf_counter() - start, 2)
    scores = summarize(classical.predict_proba(estimator, val[0]), val[1])
    with atomic_dir(out.model) as folder:
        save_classical(folder, estimator, cfg.model, preparation)
    out.checkpoint.parent.mkdir(parents=True, exist_ok=True)  # declared output; nothing to resume here
    row = {"epoch": 1, "val_loss": scores["loss"], "val_accuracy": scores["accuracy"], "seconds": seconds}
    print(f"{cfg.model}: validation accuracy {scores['accuracy']:.4f} after {seconds:.1f} s")
    return write_history(out, [row], {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"], "train_seconds": seconds})


def train_neural(cfg: Train, train: tuple, val: tuple, out: paths.TrainOutputs, preparation: dict, run_id: str) -> dict | None:
    import jax

    from mnist_dvc.models.networks import count_params
    from mnist_dvc.models.saved import save_neural
    from mnist_dvc.training.distributed import is_writer
    from mnist_dvc.training.loop import build_trainer, fit_resumable

    trainer = build_trainer(cfg, train)
    steps_per_epoch = trainer.steps_per_epoch
    print(f"{cfg.model}: {count_params(trainer.eval_model(trainer.initial_state)):,} parameters, {len(train[1]):,} training images, "
          f"{steps_per_epoch} steps of {cfg.batch_size} per epoch on {jax.device_count()} {jax.devices()[0].platform} device(s)")
    state, history = fit_resumable(trainer, val, out.checkpoint, run_id)

    if not is_writer():
        return None
    with atomic_dir(out.model) as folder:
        save_neural(folder, trainer.eval_model(state), cfg.model, cfg.width, preparation)
    epoch_rates = [steps_per_epoch * cfg.batch_size / row["seconds"] for row in history]
    return write_history(out, history, {
        "val_accuracy": history[-1]["val_accuracy"],
        "val_loss": history[-1]["val_loss"],
        "train_seconds": round(sum(row["seconds"] for row in history), 2),
        "images_per_second": round(float(np.median(epoch_rates)), 1),
    })


def train_model(cfg: Train, train: tuple, val: tuple, out: paths.TrainOutputs, preparation: dict, run_id: str) -> dict | None:
    """Trains `cfg.model` on `train` ((images, labels)), watched on `val`, and writes `out`; the
    model folder stores `preparation` so new digits are prepared alike. `run_id` names this run's
    settings and data (see the module docstring); classical models do not checkpoint and ignore it.
    Returns the summary written to `out.metrics`; None in the processes of a multi-process run
    that do not write. Raises `mnist_dvc.training.loop.NonFiniteLoss` as `mnist_dvc.training.loop.fit_resumable` does,
    for the stage to word with `mnist_dvc.training.loop.report_divergence`."""
    if cfg.model in CLASSICAL_MODELS:
        return train_classical(cfg, train, val, out, preparation)
    return train_neural(cfg, train, val, out, preparation, run_id)
