"""Benchmark: the second training (audit/dvc.yaml stage `retrain`) against the default, over seeds,
in one run on one machine; writes Markdown + JSON.

Variants: the default training; (a) without the training digits the label audit flags; (b) with the
hardest unflagged ones oversampled, freshly distorted; (c) both. Every variant builds its set with
the retrain stage's own code (`mnist_dvc.audit.curation`) from this workspace's data/prepared and the
audit's tables (run `dvc repro` and `dvc repro audit/dvc.yaml` first), and trains with the train
stage's loop (bench/time_to_accuracy.py) and `train`'s params, once per seed, seeds outermost so a
change in the machine's load touches every variant alike. Each model is scored on the prepared test
set, including how many of the test digits the audit flags it predicts otherwise than labelled.

    python -m bench.second_training --seeds 0 1 2 --out bench/results/second-training-cpu
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.pipeline import machine, percent_spread, summary, write_results
from bench.time_to_accuracy import train_and_score

VARIANTS = {  # name: the retrain section's keys
    "default": {"exclude_label_issues": False, "hard_digits": 0},
    "(a) without label issues": {"exclude_label_issues": True, "hard_digits": 0},
    "(b) hard digits oversampled": {"exclude_label_issues": False, "hard_digits": 1000},
    "(c) both": {"exclude_label_issues": True, "hard_digits": 1000},
}
HARD_COPIES = 4


def load_inputs() -> dict:
    """This workspace's prepared data and audit tables, read and checked as the retrain stage does."""
    from mnist_dvc.audit.curation import ISSUE_KEYS, QUALITY_KEYS, check_same_digits, read_audit_table
    from mnist_dvc.config import paths
    from mnist_dvc.config.params import load_params
    from mnist_dvc.io.prepared_sets import load_index, load_split, load_test_set

    images, labels = load_split(paths.TRAIN_NPZ)
    index = load_index(paths.TRAIN_NPZ, len(labels))
    return {
        "cfg": load_params("train"),
        "strengths": load_params("preprocess").augment.model_dump(exclude={"copies"}),
        "train": (images, labels, index),
        "test": load_test_set(paths.TEST_NPZ),
        "flagged": read_audit_table(paths.AUDIT_TRAIN_ISSUES, ISSUE_KEYS)["index"].to_numpy(),
        "quality": check_same_digits(index, labels, read_audit_table(paths.AUDIT_TRAIN_QUALITY, QUALITY_KEYS), paths.AUDIT_TRAIN_QUALITY),
        "test_flagged": read_audit_table(paths.AUDIT_TEST_ISSUES, ISSUE_KEYS)["index"].to_numpy(),
        "audit_tables_sha256": {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
                                for path in (paths.AUDIT_TRAIN_ISSUES, paths.AUDIT_TRAIN_QUALITY, paths.AUDIT_TEST_ISSUES)},
    }


def score_hook(test: dict, test_flagged: np.ndarray):
    """A `finish` hook for train_and_score: test errors, and the flagged test digits predicted
    otherwise than labelled, scored as the retrain stage scores (`mnist_dvc.analysis.metrics.score_on_test`)."""
    from mnist_dvc.analysis.metrics import score_on_test
    from mnist_dvc.models.inference import neural_classifier

    def score(model) -> dict:
        scores = score_on_test(neural_classifier(model), test, test_flagged, batch_size=1000)
        return {"test_errors": scores["errors"], "label_issues_predicted_otherwise": scores["label_issues_predicted_otherwise"]}

    return score


def run(inputs: dict, seeds: list[int]) -> list[dict]:
    from mnist_dvc.audit.curation import curated_training_set

    images, labels, index = inputs["train"]
    test = (inputs["test"]["images"], inputs["test"]["labels"])
    hook = score_hook(inputs["test"], inputs["test_flagged"])
    results = {name: [] for name in VARIANTS}
    for seed in seeds:
        cfg = inputs["cfg"].model_copy(update={"seed": seed})
        for name, keys in VARIANTS.items():
            train_images, train_labels, curation = curated_training_set(
                images, labels, index, flagged=inputs["flagged"], quality=inputs["quality"], hard_copies=HARD_COPIES,
                rng=np.random.default_rng(seed), strengths=inputs["strengths"], **keys)
            result = {**train_and_score(cfg, (train_images, train_labels), test, 0.99, 10**9, hook), **curation}
            results[name].append(result)
            print(f"{name}, seed {seed}: " + json.dumps({k: v for k, v in result.items() if k != "curve"}), flush=True)
    return [{"name": name, "retrain": {**VARIANTS[name], "hard_copies": HARD_COPIES},
             **{key: summary([r[key] for r in runs]) for key in
                ("final_test_accuracy", "test_errors", "label_issues_predicted_otherwise", "train_seconds")},
             "runs": runs} for name, runs in results.items()]


def write(out: Path, result: dict) -> None:
    """OUT.md: one row per variant, medians (min-max) over the seeds; OUT.json: everything."""
    flagged = result["test_label_issues"]
    table = pd.DataFrame([{
        "variant": row["name"],
        "retrain keys": ", ".join(f"`{key}={value}`" for key, value in row["retrain"].items()),
        "training images": row["runs"][0]["training_images"],
        "test accuracy": percent_spread(row["final_test_accuracy"]),
        "test errors": f"{row['test_errors']['median']:.0f} ({row['test_errors']['min']}-{row['test_errors']['max']})",
        f"of the {flagged} flagged test digits, predicted otherwise": f"{row['label_issues_predicted_otherwise']['median']:.0f}",
        "training (s)": f"{row['train_seconds']['median']:.0f}",
    } for row in result["variants"]])
    write_results(out, table, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of each run")
    parser.add_argument("--out", type=Path, required=True, help="OUT.md and OUT.json are written")
    args = parser.parse_args()
    inputs = load_inputs()
    variants = run(inputs, args.seeds)
    write(args.out, {
        "command": "python -m bench.second_training " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "train": inputs["cfg"].model_dump(mode="json"),
        "audit_tables_sha256": inputs["audit_tables_sha256"],
        "training_digits_flagged": len(inputs["flagged"]),
        "test_label_issues": int(np.isin(inputs["test"]["index"], inputs["test_flagged"]).sum()),
        "variants": variants,
    })
    print(args.out.with_suffix(".md").read_text(), end="")


if __name__ == "__main__":
    main()
