"""Benchmark: each choice behind the default recipe, measured by changing it alone; writes Markdown + JSON.

Every variant is the shipped params.yaml, shortened to `--epochs` and with fresh shifts only
(`BASE`: the default recipe until 2026-12, which the recorded table was measured against, so its
command still reproduces it), with one choice changed (label smoothing off, weight EMA on, a cosine
schedule, no augmentation, cached instead of fresh augmentation, fresh rotations and zooms, no
deskewing, the bfloat16 step). For each, a fresh clone
of HEAD runs `dvc repro preprocess` with the variant's settings, then the train stage's own `Trainer` trains
one model per seed (bench/time_to_accuracy.py's loop, so the clock and scoring are the same).
Every trained model is also scored with test-time augmentation (`evaluate.tta`): the mean of its
probabilities over the digit and the digit shifted one pixel up, down, left and right.

    python -m bench.ablation --epochs 4 --seeds 0 1 2 --out bench/results/ablation-cpu
"""

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.pipeline import machine, percent_spread, summary, write_results
from bench.time_to_accuracy import prepare, train_and_score

EVAL_EVERY_EPOCH = 55040  # training images between scorings of the test set: about an epoch of the 55,000

BASE = ["train.augment.rotation_deg=0.0", "train.augment.scale=0.0"]  # before train.epochs and each variant's changes

VARIANTS = {  # name: settings on top of params.yaml with BASE and train.epochs set to --epochs
    "default": [],
    "no label smoothing": ["train.label_smoothing=0.0"],
    "weight EMA 0.999": ["train.ema_decay=0.999"],
    "cosine schedule": ["train.schedule=cosine"],
    "no augmentation": ["train.augment.shift_px=0.0"],
    # One cached distorted copy doubles each epoch, so half the epochs keeps the number of steps.
    "cached instead of fresh augmentation": ["train.augment.shift_px=0.0", "preprocess.augment.copies=1", "train.epochs={half}"],
    "fresh rotations and zooms too": ["train.augment.rotation_deg=10.0", "train.augment.scale=0.1"],
    "no deskewing": ["preprocess.deskew=false"],
    "bfloat16 step": ["train.precision=bfloat16"],  # the GPU recipe's precision; on a CPU, a check that it still learns
}


def tta_scores(test: tuple) -> Callable[[object], dict]:
    """A `finish` hook for train_and_score: the model's test accuracy with test-time augmentation."""
    from mnist_dvc.models.inference import neural_classifier, predict_proba

    images, labels = test

    def score(model) -> dict:
        probs = predict_proba(neural_classifier(model), images, batch_size=1000, tta=True)
        return {"tta_test_accuracy": float(np.mean(probs.argmax(1) == labels))}

    return score


def variant_changes(name: str, epochs: int) -> list[str]:
    return [setting.format(half=epochs // 2) for setting in VARIANTS[name]]


def measure(name: str, settings: list[str], seeds: list[int], eval_every: int = EVAL_EVERY_EPOCH) -> dict:
    """Trains params.yaml with `settings` (applied in order) once per seed in a fresh clone; the
    median and spread of its scores, and every run. bench/frontier.py measures its recipes with it."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="mnist-ablation-") as folder:
        cfg, train, test = prepare(Path(folder), settings)
        for seed in seeds:
            run = train_and_score(cfg.model_copy(update={"seed": seed}), train, test, 0.99, eval_every, tta_scores(test))
            runs.append(run)
            print(f"{name}, seed {seed}: {run['final_test_accuracy']:.4f} (TTA {run['tta_test_accuracy']:.4f}) "
                  f"in {run['train_seconds']:.0f} s", flush=True)
    return {
        "name": name,
        "settings": settings,
        **{key: summary([run[key] for run in runs]) for key in
           ("final_test_accuracy", "tta_test_accuracy", "train_seconds", "train_images_per_second")},
        "runs": runs,
    }


def write(out: Path, result: dict) -> None:
    """OUT.md: the table of docs/choices.md, one row per variant; OUT.json: everything, every run included."""
    rows = result["variants"]
    baseline = next((row["final_test_accuracy"]["median"] for row in rows if row["name"] == "default"), None)

    table = pd.DataFrame([{
        "choice": row["name"],
        "changed settings": ", ".join(f"`{change}`" for change in row["changes"]) or "(as shipped)",
        "test accuracy, median (min-max)": percent_spread(row["final_test_accuracy"]),
        "vs default (points)": "" if baseline is None else f"{(row['final_test_accuracy']['median'] - baseline) * 100:+.2f}",
        "with shift TTA": percent_spread(row["tta_test_accuracy"]),
        "training (s)": f"{row['train_seconds']['median']:.0f}",
        "images/s": f"{row['train_images_per_second']['median']:,.0f}",
    } for row in rows])
    write_results(out, table, result, colalign=("left", "left", "left", "right", "left", "right", "right"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="train.epochs of every variant (half for cached augmentation)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of each run")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, metavar="NAME",
                        help="which variants to run, default all")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY_EPOCH, help="training images between scorings of the test set")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.json")
    args = parser.parse_args()

    result = {"command": "python -m bench.ablation " + " ".join(sys.argv[1:]), "machine": machine(),
              "epochs": args.epochs, "seeds": args.seeds, "variants": []}
    for name in args.variants:
        changes = variant_changes(name, args.epochs)  # after train.epochs: a change may set epochs again
        result["variants"].append({"changes": changes, **measure(name, [*BASE, f"train.epochs={args.epochs}", *changes], args.seeds, args.eval_every)})
        write(args.out, result)  # after every variant, so a long run survives an interruption
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
