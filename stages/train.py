"""Stage `train`: fits the model chosen by `train.model` on data/prepared and saves it to data/model.

Neural models train with the jit-compiled steps of stages/training.py, data-parallel over every
device JAX sees. After each epoch the full training state is checkpointed to data/checkpoints
(a DVC `persist` output), so a killed run resumes where it stopped and ends with the same
weights as one that never stopped. Scikit-learn baselines (stages/classical.py) fit in one go.

Outputs: data/model/ (model.json + weights), eval/train.json (metrics), eval/train_history.csv
(per-epoch curves for `dvc plots`). A committee member (committee/dvc.yaml) is the same training
with another model and seed, written under its own folder:

    python -m stages.train --model vgg_bn --seed 3 --out data/committee/vgg_bn-3
"""

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stages import checkpoint
from stages.atomic import atomic_dir, write_json
from stages.errors import UserError, run_stage
from stages.metrics import summarize
from stages.npz import read_npz
from stages.params import CLASSICAL_MODELS, NEURAL_MODELS, Train, load_params
from stages.predict import save_neural
from stages.render import write_csv

PREPARED = Path("data/prepared")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
REPORT_EVERY = 20  # steps between reads of the loss, for the progress bar and the non-finite check


@dataclass(frozen=True)
class Outputs:
    """Where one training run writes: the model, its resumable checkpoint, its curves and metrics."""

    model: Path
    checkpoint: Path
    history: Path
    metrics: Path

    @classmethod
    def under(cls, folder: Path) -> "Outputs":
        """A committee member's layout: everything in one folder of its own."""
        return cls(folder / "model", folder / "checkpoints" / "last.msgpack", folder / "train_history.csv", folder / "train.json")


PIPELINE = Outputs(Path("data/model"), Path("data/checkpoints/last.msgpack"), Path("eval/train_history.csv"), Path("eval/train.json"))


def load_split(name: str, folder: Path = PREPARED) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_npz(folder / f"{name}.npz", ("images", "labels"), "preprocess")
    return arrays["images"], arrays["labels"]


def fingerprint(cfg: Train) -> str:
    """Identifies what a checkpoint was trained on: the train params and the prepared data."""
    digest = hashlib.sha256(cfg.model_dump_json().encode())
    for name in ("train", "val"):
        digest.update((PREPARED / f"{name}.npz").read_bytes())
    return digest.hexdigest()


def write_history(out: Outputs, history: list[dict], summary: dict) -> None:
    write_csv(out.history, history, HISTORY_COLUMNS)
    write_json(out.metrics, summary)


def train_classical(cfg: Train, train: tuple, val: tuple, out: Outputs) -> None:
    from stages import classical

    start = time.perf_counter()
    estimator = classical.fit(cfg.model, *train, seed=cfg.seed, **cfg.classical.model_dump())
    seconds = round(time.perf_counter() - start, 2)
    scores = summarize(classical.predict_proba(estimator, val[0]), val[1])
    val_loss, val_accuracy = scores["loss"], scores["accuracy"]
    with atomic_dir(out.model) as folder:
        classical.save(estimator, folder / "model.pkl")
        write_json(folder / "model.json", {"model": cfg.model})
    out.checkpoint.parent.mkdir(parents=True, exist_ok=True)  # declared output; nothing to resume here
    row = {"epoch": 1, "val_loss": val_loss, "val_accuracy": val_accuracy, "seconds": seconds}
    write_history(out, [row], {"val_accuracy": val_accuracy, "val_loss": val_loss, "train_seconds": seconds})
    print(f"{cfg.model}: validation accuracy {val_accuracy:.4f} after {seconds:.1f} s")


def restore(trainer, path: Path, run_id: str):
    """(state, history, first epoch): from the checkpoint if it was made by this very run, else fresh."""
    import jax

    fresh = (trainer.initial_state, [], 1)
    if not path.exists():
        return fresh
    try:
        state, meta = checkpoint.load(path, jax.device_get(trainer.initial_state))
    except UserError as error:
        print(f"ignoring the checkpoint: {error}")
        return fresh
    if meta.get("fingerprint") != run_id:
        print(f"ignoring {path}: it was trained with other params or data")
        return fresh
    print(f"resuming after epoch {meta['epoch']} from {path}")
    return jax.device_put(state, trainer.replicated), json.loads(meta["history"]), int(meta["epoch"]) + 1


def run_epoch(trainer, state, epoch: int, cfg: Train):
    """Trains one epoch; returns (state, mean loss, accuracy). Stops at the first non-finite loss."""
    steps = trainer.steps_per_epoch
    losses, correct, pending = [], 0, []
    with tqdm(total=steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", leave=False) as bar:
        for step, (latest, loss, step_correct) in enumerate(trainer.epoch_steps(state, epoch), 1):
            pending.append((loss, step_correct))
            if len(pending) < REPORT_EVERY and step < steps:
                continue
            # Reading values back waits for the device, so it happens every few steps only.
            chunk = np.array([float(value) for value, _ in pending])
            bad = np.flatnonzero(~np.isfinite(chunk))
            if bad.size:
                raise UserError(
                    f"train: the loss became {chunk[bad[0]]} at epoch {epoch}, step {step - len(chunk) + bad[0] + 1}; "
                    f"lower train.learning_rate (now {cfg.learning_rate}); the checkpoint of the last good epoch is kept"
                )
            losses.extend(chunk)
            correct += sum(int(value) for _, value in pending)
            bar.update(len(chunk))
            bar.set_postfix(loss=f"{chunk.mean():.4f}")
            pending = []
    return latest, float(np.mean(losses)), correct / (steps * cfg.batch_size)


def train_neural(cfg: Train, train: tuple, val: tuple, out: Outputs) -> None:
    import jax

    from stages.models import build_model, count_params, init_rngs
    from stages.training import Trainer

    n, steps_per_epoch = len(train[1]), len(train[1]) // cfg.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"params.yaml: train.batch_size = {cfg.batch_size} is larger than the {n} training images")
    model = build_model(cfg.model, width=cfg.width, rngs=init_rngs(cfg.seed))
    trainer = Trainer(model, cfg, train, steps_per_epoch)
    print(f"{cfg.model}: {count_params(model):,} parameters, {n:,} training images, {steps_per_epoch} steps "
          f"of {cfg.batch_size} per epoch on {len(jax.devices())} {jax.devices()[0].platform} device(s)")

    run_id = fingerprint(cfg)
    state, history, first_epoch = restore(trainer, out.checkpoint, run_id)
    for epoch in range(first_epoch, cfg.epochs + 1):
        start = time.perf_counter()
        state, train_loss, train_accuracy = run_epoch(trainer, state, epoch, cfg)
        val_loss, val_accuracy = trainer.evaluate(state, *val)
        seconds = time.perf_counter() - start
        history.append({
            "epoch": epoch, "train_loss": round(train_loss, 6), "train_accuracy": round(train_accuracy, 6),
            "val_loss": round(val_loss, 6), "val_accuracy": round(val_accuracy, 6), "seconds": round(seconds, 2),
        })
        print(f"epoch {epoch}/{cfg.epochs}: train loss {train_loss:.4f} acc {train_accuracy:.4f}, "
              f"val loss {val_loss:.4f} acc {val_accuracy:.4f}, {seconds:.1f} s, "
              f"{steps_per_epoch * cfg.batch_size / seconds:,.0f} images/s")
        checkpoint.save(out.checkpoint, jax.device_get(state), {"fingerprint": run_id, "epoch": epoch, "history": json.dumps(history)})

    with atomic_dir(out.model) as folder:
        save_neural(folder, trainer.eval_model(state), cfg.model, cfg.width)
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
    cfg = load_params("train")
    overrides = {key: value for key, value in (("model", args.model), ("seed", args.seed)) if value is not None}
    cfg = cfg.model_copy(update=overrides)
    out = Outputs.under(args.out) if args.out else PIPELINE
    train, val = load_split("train"), load_split("val")
    if cfg.model in CLASSICAL_MODELS:
        train_classical(cfg, train, val, out)
    else:
        train_neural(cfg, train, val, out)


if __name__ == "__main__":
    run_stage(main)
