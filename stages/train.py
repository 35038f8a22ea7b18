"""Stage `train`: fits the model chosen by `train.model` on data/prepared and saves it to data/model.

Neural models train with `stages.lib.fit` (jit-compiled steps, data-parallel over every device JAX
sees), checkpointing the whole training state after each epoch to data/checkpoints (a DVC
`persist` output), so a killed run resumes where it stopped and ends with the same weights as one
that never stopped. Scikit-learn baselines (`stages.lib.classical`) fit in one go.

Several cooperating processes can run it as one training (`stages.lib.distributed`), started by
`mnist-dvc launch --processes N -- python -m stages.train` on one machine or by `srun` on a Slurm
cluster; the first process writes every output, the others only compute.

Outputs: data/model/ (model.json + weights), eval/train.json (metrics), eval/train_history.csv
(per-epoch curves for `dvc plots`). A committee member (committee/dvc.yaml) is the same training
with another model and seed, written under its own folder:

    python -m stages.train --model vgg_bn --seed 3 --out data/committee/vgg_bn-3
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stages.lib import paths
from stages.lib.atomic import atomic_dir, write_csv, write_json
from stages.lib.distributed import start_if_asked
from stages.lib.errors import UserError, run_stage
from stages.lib.params import CLASSICAL_MODELS, NEURAL_MODELS, Train, check_train_fits, load_params
from stages.lib.prepared import load_split


def read_preparation() -> dict:
    """preprocess's preparation.json, stored with the model so new digits are prepared alike."""
    try:
        return json.loads(paths.PREPARATION_JSON.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise UserError(f"{paths.PREPARATION_JSON}: missing or not JSON; rerun the preprocess stage (dvc repro)") from None


def write_history(out: paths.TrainOutputs, history: list[dict], summary: dict) -> None:
    from stages.lib.fit import HISTORY_COLUMNS

    write_csv(out.history, pd.DataFrame(history).reindex(columns=HISTORY_COLUMNS))
    write_json(out.metrics, summary)


def train_classical(cfg: Train, train: tuple, val: tuple, out: paths.TrainOutputs, preparation: dict) -> None:
    from stages.lib import classical
    from stages.lib.metrics import summarize
    from stages.lib.model_files import save_classical

    start = time.perf_counter()
    estimator = classical.fit(cfg.model, *train, seed=cfg.seed, **cfg.classical.model_dump())
    seconds = round(time.perf_counter() - start, 2)
    scores = summarize(classical.predict_proba(estimator, val[0]), val[1])
    with atomic_dir(out.model) as folder:
        save_classical(folder, estimator, cfg.model, preparation)
    out.checkpoint.parent.mkdir(parents=True, exist_ok=True)  # declared output; nothing to resume here
    row = {"epoch": 1, "val_loss": scores["loss"], "val_accuracy": scores["accuracy"], "seconds": seconds}
    write_history(out, [row], {"val_accuracy": scores["accuracy"], "val_loss": scores["loss"], "train_seconds": seconds})
    print(f"{cfg.model}: validation accuracy {scores['accuracy']:.4f} after {seconds:.1f} s")


def train_neural(cfg: Train, train: tuple, val: tuple, out: paths.TrainOutputs, preparation: dict) -> None:
    import jax

    from stages.lib import checkpoint
    from stages.lib.distributed import is_writer, to_host
    from stages.lib.fit import NonFiniteLoss, fingerprint, fit, restore
    from stages.lib.model_files import save_neural
    from stages.lib.models import build_model, count_params, init_rngs
    from stages.lib.trainer import Trainer

    steps_per_epoch = len(train[1]) // cfg.batch_size
    model = build_model(cfg.model, width=cfg.width, rngs=init_rngs(cfg.seed))
    trainer = Trainer(model, cfg, train, steps_per_epoch)
    print(f"{cfg.model}: {count_params(model):,} parameters, {len(train[1]):,} training images, {steps_per_epoch} steps "
          f"of {cfg.batch_size} per epoch on {jax.device_count()} {jax.devices()[0].platform} device(s)")

    run_id = fingerprint(cfg.model_dump_json(), [paths.TRAIN_NPZ, paths.VAL_NPZ])

    def save_checkpoint(epoch, state, history):
        if is_writer():
            checkpoint.save(out.checkpoint, to_host(state), {"fingerprint": run_id, "epoch": epoch, "history": json.dumps(history)})

    state, history, first_epoch = restore(trainer, out.checkpoint, run_id)
    try:
        state, history = fit(trainer, state, history, first_epoch, val, after_epoch=save_checkpoint)
    except NonFiniteLoss as error:
        raise UserError(f"train: {error}; lower train.learning_rate (now {cfg.learning_rate}); "
                        "the checkpoint of the last good epoch is kept") from None

    if not is_writer():
        return
    with atomic_dir(out.model) as folder:
        save_neural(folder, trainer.eval_model(state), cfg.model, cfg.width, preparation)
    epoch_rates = [steps_per_epoch * cfg.batch_size / row["seconds"] for row in history]
    write_history(out, history, {
        "val_accuracy": history[-1]["val_accuracy"],
        "val_loss": history[-1]["val_loss"],
        "train_seconds": round(sum(row["seconds"] for row in history), 2),
        "images_per_second": round(float(np.median(epoch_rates)), 1),
    })


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 2**32)")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stages.train", description="Trains the model that params.yaml's train section describes.")
    parser.add_argument("--model", choices=NEURAL_MODELS + CLASSICAL_MODELS, help="instead of train.model (committee members)")
    parser.add_argument("--seed", type=_seed, help="instead of train.seed (committee members)")
    parser.add_argument("--out", type=Path, help="write everything under this folder instead of data/model and eval/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start_if_asked(os.environ)
    overrides = {key: value for key, value in (("model", args.model), ("seed", args.seed)) if value is not None}
    cfg = load_params("train").model_copy(update=overrides)
    out = paths.TrainOutputs.under(args.out) if args.out else paths.TRAIN
    train, val, preparation = load_split(paths.TRAIN_NPZ), load_split(paths.VAL_NPZ), read_preparation()
    import jax

    check_train_fits(cfg, len(train[1]), jax.device_count())
    if cfg.model in CLASSICAL_MODELS:
        train_classical(cfg, train, val, out, preparation)
    else:
        train_neural(cfg, train, val, out, preparation)


if __name__ == "__main__":
    run_stage(main)
