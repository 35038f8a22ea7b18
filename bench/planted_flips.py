"""Benchmark: the review queue against planted label errors, the second training with the errors a
reviewer finds corrected or left out, and what the queue costs the stages that write it; writes JSON.

1. Planted flips. The first `--digits` training digits, prepared as the pipeline prepares them
   (deskewed), `--flip` of them given another label at random (seeded by `--flip-seed`). The audit's
   cross-validation on them, as the fold stage runs it: `audit.folds` stratified folds
   (`mnist_dvc.audit.cross_validation.fold_split`), each fold model the `train` section's with
   `--fold-epochs` epochs, trained by the training loop (`mnist_dvc.training.loop.fit`, without
   checkpoints), its held-out fold predicted; the out-of-fold probabilities calibrated by one fitted
   temperature, as the audit stage does. Three orders of all digits: the review queue's
   (`mnist_dvc.analysis.review_queue.queue_order`: confident learning's flagged digits first, then
   label quality), label quality alone, and raw confidence (the uncalibrated probability of the
   prediction, least confident first). For each, the share of planted flips among its first K
   (precision at K) and the share of the flips it holds there (recall at K).
2. The second training. A reviewer works through the queue's first `review.top.train` digits and
   (simulated) recognises the planted flips among them; the digits are trained on (the `train`
   section, `--epochs` epochs, seeds `--seeds`, bench/time_to_accuracy.py's loop) with the flips
   left in, the flips found left out (a verdict `ambiguous`), or corrected (a verdict `wrong`),
   each model scored on the official test set (deskewed, all 10,000).
3. The queue's cost. A copy of the working tree (committed or not) runs download, preprocess, train,
   evaluate and two audit folds as the stages do (`python -m stages.<name>`) on `--cost-digits`
   training digits and the whole test set, then times the `ambiguous` and `audit` stages with
   `review.top` at 0 (no queue) and at its defaults, alternately, `--cost-repeats` times each.

    python -m bench.planted_flips --out bench/results/planted-flips-cpu.json
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.pipeline import REPO, machine, override, summary, write_result

TOP_K = (50, 100, 200, 300, 400, 600, 1000)
COST_SETTINGS = {  # the stage-cost project: a small training run, two one-epoch folds, the whole test set
    "preprocess.val_size": 1000, "train.epochs": 1, "audit.folds": [0, 1], "audit.epochs": 1,
}


def prepared_digits(n: int) -> tuple:
    """(the first `n` training digits, their official labels, the test digits, their labels), all
    deskewed as the pipeline's default preparation does, from MNIST_MIRROR's official files."""
    from mnist_dvc.digits.preparation import prepare
    from mnist_dvc.io.idx import read_split

    mirror = Path(os.environ.get("MNIST_MIRROR", REPO.parent / "shared" / "mnist"))
    preparation = {"deskew": True, "stroke_width": None}
    images, labels = read_split(mirror / "train-images-idx3-ubyte.gz", mirror / "train-labels-idx1-ubyte.gz")
    test_images, test_labels = read_split(mirror / "t10k-images-idx3-ubyte.gz", mirror / "t10k-labels-idx1-ubyte.gz")
    return prepare(images[:n], preparation), labels[:n], prepare(test_images, preparation), test_labels


def flip(labels: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels with round(share x N) of them changed to another digit at random, the flipped positions, sorted)."""
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), round(share * len(labels)), replace=False))
    given = labels.copy()
    given[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return given, flipped


def out_of_fold(cfg, images: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, list[float]]:
    """Every digit's probabilities from the fold model that never saw it, and each fold's seconds."""
    from mnist_dvc.audit.cross_validation import fold_split
    from mnist_dvc.models.inference import PREDICT_BATCH, neural_classifier, predict_proba
    from mnist_dvc.training.loop import build_trainer, fit

    probs, seconds = np.zeros((len(labels), 10), dtype=np.float32), []
    for fold in range(folds):
        started = time.perf_counter()
        train_at, val_at, held_out = fold_split(labels, folds, fold, seed)
        trainer = build_trainer(cfg, (images[train_at], labels[train_at]))
        state, _ = fit(trainer, trainer.initial_state, [], 1, (images[val_at], labels[val_at]), after_epoch=lambda *_: None)
        probs[held_out] = predict_proba(neural_classifier(trainer.eval_model(state)), images[held_out], PREDICT_BATCH)
        seconds.append(round(time.perf_counter() - started, 1))
        print(f"fold {fold}: {len(held_out):,} held out, {seconds[-1]} s", flush=True)
    return probs, seconds


def at_k(order: np.ndarray, flipped: np.ndarray) -> dict:
    """Precision and recall at every K of `TOP_K` of an order of all digits."""
    hits = [int(np.isin(order[:k], flipped).sum()) for k in TOP_K]
    return {"found": hits, "precision": [round(h / k, 4) for h, k in zip(hits, TOP_K)],
            "recall": [round(h / len(flipped), 4) for h in hits]}


def rankings(raw: np.ndarray, given: np.ndarray, flipped: np.ndarray) -> tuple[dict, dict]:
    """(the three orders' precision and recall at K, what confident learning flagged), from the raw
    out-of-fold probabilities calibrated as the audit stage calibrates them."""
    from mnist_dvc.analysis.ambiguity import least_confident
    from mnist_dvc.analysis.calibration import calibrated_probs, fit_temperature, logits_from_probs
    from mnist_dvc.analysis.review_queue import flagged_positions, queue_order

    temperature = fit_temperature(logits_from_probs(raw), given)
    probs = calibrated_probs(raw, temperature)
    flagged = flagged_positions(probs, given)
    orders = {
        "review queue": queue_order(probs, given, flagged),
        "label quality alone": queue_order(probs, given, np.zeros(0, dtype=np.int64)),
        "raw confidence": least_confident(raw, given, len(given)),
    }
    hits = int(np.isin(flagged, flipped).sum())
    return ({name: at_k(order, flipped) for name, order in orders.items()},
            {"temperature": round(temperature, 4), "flagged": len(flagged), "flagged_flips": hits,
             "precision": round(hits / max(len(flagged), 1), 4), "recall": round(hits / len(flipped), 4),
             "queue": orders["review queue"]})


def second_training(cfg, images, given, truth, found, test, seeds: list[int]) -> list[dict]:
    """Trains on the digits with the found flips left in, left out and corrected, once per seed
    (seeds outermost, so a change in the machine's load touches every variant alike)."""
    from bench.time_to_accuracy import train_and_score

    keep = np.ones(len(given), dtype=bool)
    keep[found] = False
    corrected = given.copy()
    corrected[found] = truth[found]
    sets = {"flips left in": (images, given), "found flips left out": (images[keep], given[keep]),
            "found flips corrected": (images, corrected)}
    runs = {name: [] for name in sets}
    for seed in seeds:
        for name, train in sets.items():
            result = train_and_score(cfg.model_copy(update={"seed": seed}), train, test, 0.99, 10**9)
            runs[name].append({"seed": seed, "training_images": len(train[1]), "final_test_accuracy": result["final_test_accuracy"],
                               "train_seconds": result["train_seconds"]})
            print(f"{name}, seed {seed}: {json.dumps(runs[name][-1])}", flush=True)
    return [{"name": name, "final_test_accuracy": summary([run["final_test_accuracy"] for run in group]), "runs": group}
            for name, group in runs.items()]


def working_tree_copy(folder: Path) -> None:
    """The project's files as they are now, committed or not (git-ignored ones such as data/ left out)."""
    listing = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             capture_output=True, check=True).stdout.decode()
    for name in sorted(set(filter(None, listing.split("\0")))):
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name)


def stage(folder: Path, *args: str) -> float:
    """Runs `python -m stages.ARGS` in `folder`; its seconds, or the benchmark stops with its error."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *args], cwd=folder, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"python -m {' '.join(args)} failed in {folder}:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def queue_cost(digits: int, repeats: int) -> dict:
    """Seconds of the ambiguous and audit stages without a queue (review.top 0) and with the
    default queues, on a project made by the stages in a copy of the working tree."""
    from mnist_dvc.config.params import load_params

    default = load_params("review", REPO / "params.yaml").top
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as name:
        folder = Path(name)
        working_tree_copy(folder)
        override(folder / "params.yaml", [f"preprocess.train_subset={digits}",
                                          *(f"{key}={json.dumps(value)}" for key, value in COST_SETTINGS.items())])
        for args in (["stages.download"], ["stages.preprocess"], ["stages.train"], ["stages.evaluate"], ["stages.fold", "0"], ["stages.fold", "1"]):
            stage(folder, *args)
        settings = {"without": (0, 0), "with": (default.test, default.train)}
        seconds = {name: {which: [] for which in settings} for name in ("ambiguous", "audit")}
        for _ in range(repeats):
            for which, (test, train) in settings.items():
                override(folder / "params.yaml", [f"review.top.test={test}", f"review.top.train={train}"])
                for name in seconds:
                    seconds[name][which].append(round(stage(folder, f"stages.{name}"), 2))
                    print(f"{name} {which} queues: {seconds[name][which][-1]} s", flush=True)
    return {"training_digits": digits, "test_digits": 10_000, "settings": COST_SETTINGS,
            "queues": {"ambiguous": {"test": default.test}, "audit": {"train": default.train, "test": default.test}},
            "stages": {name: {**runs, "queue_seconds": round(statistics.median(runs["with"]) - statistics.median(runs["without"]), 2)}
                       for name, runs in seconds.items()}}


def main() -> None:
    from mnist_dvc.config.params import load_params

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=int, default=15_000, help="training digits the flips are planted among")
    parser.add_argument("--flip", type=float, default=0.02, help="share of them given another label")
    parser.add_argument("--flip-seed", type=int, default=0)
    parser.add_argument("--fold-epochs", type=int, default=load_params("audit", REPO / "params.yaml").epochs,
                        help="epochs of each fold model (default audit.epochs)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each second training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of the second trainings")
    parser.add_argument("--cost-digits", type=int, default=10_000, help="training digits of the stage-cost project")
    parser.add_argument("--cost-repeats", type=int, default=2, help="runs of each stage with and without the queues")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    started = time.perf_counter()
    train_cfg, audit = load_params("train", REPO / "params.yaml"), load_params("audit", REPO / "params.yaml")
    reviewed = load_params("review", REPO / "params.yaml").top.train

    images, truth, test_images, test_labels = prepared_digits(args.digits)
    given, flipped = flip(truth, args.flip, args.flip_seed)
    raw, fold_seconds = out_of_fold(train_cfg.model_copy(update={"epochs": args.fold_epochs}), images, given, len(audit.folds), audit.seed)
    ranked, flags = rankings(raw, given, flipped)
    found = np.intersect1d(flags.pop("queue")[:reviewed], flipped)
    trainings = second_training(train_cfg.model_copy(update={"epochs": args.epochs}), images, given, truth, found,
                                (test_images, test_labels), args.seeds)
    cost = queue_cost(args.cost_digits, args.cost_repeats)
    write_result(args.out, {
        "command": "python -m bench.planted_flips " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "note": "a 2-core VM shared with other work while it ran: the seconds are indicative",
        "planted": {"digits": args.digits, "flipped": len(flipped), "flip_seed": args.flip_seed, "folds": len(audit.folds),
                    "fold_epochs": args.fold_epochs, "fold_seconds": fold_seconds,
                    "out_of_fold_accuracy_on_true_labels": round(float((raw.argmax(axis=1) == truth).mean()), 4), **flags},
        "train": train_cfg.model_dump(mode="json"),
        "top_k": list(TOP_K),
        "rankings": ranked,
        "second_training": {"reviewed": reviewed, "flips_found": len(found), "epochs": args.epochs, "seeds": args.seeds,
                            "test_digits": len(test_labels), "variants": trainings},
        "queue_cost": cost,
        "seconds": round(time.perf_counter() - started),
    })
    print(json.dumps({"rankings": ranked, "flags": flags, "found": len(found)}, indent=1))


if __name__ == "__main__":
    main()
