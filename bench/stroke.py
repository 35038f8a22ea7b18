"""Benchmark: stroke-thickness normalisation (`preprocess.stroke`) against the default, on MNIST and
on digits written with other pens; writes Markdown + JSON.

For each variant a fresh clone of HEAD runs `dvc repro preprocess` with its settings, then the
train stage's own loop trains one model per seed (bench/time_to_accuracy.py). Each model is
scored on the prepared test set and on the same 10,000 test digits as a thinner and a bolder pen
would have written them (the raw digits eroded or dilated by one pixel with a 3x3 cross, grey
levels kept), each then prepared exactly as the variant prepares digits (model.json's preparation).

    python -m bench.stroke --seeds 0 1 2 --out bench/results/stroke-cpu
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from bench.pipeline import machine, percent_spread, summary, write_results
from bench.time_to_accuracy import prepare as prepare_clone
from bench.time_to_accuracy import train_and_score

VARIANTS = {"default": [], "stroke normalisation": ["preprocess.stroke=true"]}
_CROSS = ndimage.generate_binary_structure(2, 1)[None]


def pens(originals: np.ndarray) -> dict[str, np.ndarray]:
    """The raw test digits as written, with a thinner pen and with a bolder one."""
    return {"as written": originals, "thinner pen": ndimage.grey_erosion(originals, footprint=_CROSS),
            "bolder pen": ndimage.grey_dilation(originals, footprint=_CROSS)}


def pen_scores(originals: np.ndarray, labels: np.ndarray, preparation: dict):
    """A `finish` hook for train_and_score: the model's accuracy on each pen's digits, prepared alike."""
    from mnist_dvc.digits.preparation import prepare
    from mnist_dvc.models.inference import neural_classifier, predict_proba

    sets = {name: prepare(digits, preparation) for name, digits in pens(originals).items()}

    def score(model) -> dict:
        classifier = neural_classifier(model)
        return {f"{name} accuracy": float(np.mean(predict_proba(classifier, digits, 1000).argmax(1) == labels))
                for name, digits in sets.items()}

    return score


def measure(name: str, seeds: list[int]) -> dict:
    from mnist_dvc.config import paths
    from mnist_dvc.io.prepared_sets import load_test_set

    runs = []
    with tempfile.TemporaryDirectory(prefix="mnist-stroke-") as folder:
        cfg, train, test = prepare_clone(Path(folder), VARIANTS[name])
        preparation = json.loads((Path(folder) / paths.PREPARATION_JSON).read_text())
        originals = load_test_set(Path(folder) / paths.TEST_NPZ)["original"]
        hook = pen_scores(originals, test[1], preparation)
        for seed in seeds:
            run = train_and_score(cfg.model_copy(update={"seed": seed}), train, test, 0.99, 10**9, hook)
            runs.append(run)
            print(f"{name}, seed {seed}: " + json.dumps({k: v for k, v in run.items() if k != "curve"}), flush=True)
    keys = ["final_test_accuracy", *(f"{pen} accuracy" for pen in ("as written", "thinner pen", "bolder pen")), "train_seconds"]
    return {"name": name, "settings": VARIANTS[name], "preparation": preparation,
            **{key: summary([run[key] for run in runs]) for key in keys}, "runs": runs}


def write(out: Path, result: dict) -> None:
    """OUT.md: one row per variant, medians (min-max) over the seeds; OUT.json: everything."""
    table = pd.DataFrame([{
        "variant": row["name"],
        "settings": ", ".join(f"`{s}`" for s in row["settings"]) or "(as shipped)",
        "MNIST test": percent_spread(row["as written accuracy"]),
        "thinner pen": percent_spread(row["thinner pen accuracy"]),
        "bolder pen": percent_spread(row["bolder pen accuracy"]),
        "training (s)": f"{row['train_seconds']['median']:.0f}",
    } for row in result["variants"]])
    write_results(out, table, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of each run")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.json")
    args = parser.parse_args()
    result = {"command": "python -m bench.stroke " + " ".join(sys.argv[1:]), "machine": machine(), "seeds": args.seeds, "variants": []}
    for name in VARIANTS:
        result["variants"].append(measure(name, args.seeds))
        write(args.out, result)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
