"""Side-by-side table: every model through the same pipeline, as DVC experiments; writes Markdown + JSON.

In a fresh clone of HEAD, runs one `dvc exp run -S train.model=... -S ...` per model and setting
("plain": no deskew, no augmentation; "deskew+aug": deskewing and the default random shifts), so
every model sees the same data, split and evaluation, and `dvc exp show` in that clone lists them
all. The reported accuracies of the original authors are quoted in their own column, never mixed
with what was measured here.

    python bench/compare_models.py --epochs 2 --out bench/results/models-cpu   # the table of docs/models.md
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.pipeline import clone_head, machine, run_dvc, write_results  # noqa: E402
from mnist_dvc.config import paths  # noqa: E402
from mnist_dvc.config.params import CLASSICAL_MODELS, NEURAL_MODELS  # noqa: E402
from mnist_dvc.models.saved import DESCRIPTION  # noqa: E402

MODELS = NEURAL_MODELS + CLASSICAL_MODELS
REPORTED = {  # what each original's author reported, on their own split and schedule; tests check one per model
    "vgg_bn": "(ours)",
    "kaggle_cnn": "99.5% (Kaggle)",
    "tf_conv2d": "99.32% (100 epochs)",
    "keras_cnn": "99.2%",
    "flat_mlp": "97.46% (100 epochs)",
    "svc": "99.0-99.4% (deskewed poly SVM, LeCun's table)",
    "knn": "97.6-98.8% (deskewed k-NN, LeCun's table)",
}
ALIGN = ("left", "right", "left", "left", "right", "right", "right", "right", "left")
SETTINGS = {
    "plain": ["preprocess.deskew=false", "train.augment.shift_px=0.0"],
    "deskew+aug": ["preprocess.deskew=true", "train.augment.shift_px=2.0"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.md and OUT.json")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="mnist-models-"))
    command = "python bench/compare_models.py " + " ".join(sys.argv[1:])
    rows = []
    try:
        clone_head(folder)
        for model in args.models:
            for name, settings in SETTINGS.items():
                settings_here = settings + [f"train.model={model}", f"train.epochs={args.epochs}"]
                wall = run_dvc(folder, "exp", "run", *(arg for s in settings_here for arg in ("-S", s)))
                metrics = json.loads((folder / paths.METRICS_JSON).read_text())
                train = json.loads((folder / paths.TRAIN.metrics).read_text())
                described = json.loads((folder / paths.MODEL / DESCRIPTION).read_text())
                rows.append({"model": model, "setting": name, "parameters": described.get("parameters"),
                             "epochs": args.epochs if model in NEURAL_MODELS else None,
                             "train_seconds": train["train_seconds"], "wall_seconds": round(wall, 1),
                             "test_accuracy": metrics["accuracy"], "reported": REPORTED[model]})
                write(args.out, command, rows)  # after every run, so a long table survives an interruption
                print(rows[-1], flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(args.out.with_suffix(".md").read_text())


def write(out: Path, command: str, rows: list[dict]) -> None:
    """OUT.md: the table of docs/models.md, one row per run; OUT.json: every row with the command and machine."""
    runs = pd.DataFrame(rows)
    on = runs["setting"] == "deskew+aug"
    table = pd.DataFrame({
        "model": runs["model"],
        "parameters": runs["parameters"].map(lambda n: f"{n:,.0f}" if n == n and n else "-"),
        "deskew": on.map({True: "yes", False: "no"}),
        "augmentation": (on & runs["epochs"].notna()).map({True: "shift ±2 px", False: "none"}),
        "epochs": runs["epochs"].map(lambda n: f"{n:.0f}" if n == n else "-"),
        "wall time (s)": runs["wall_seconds"].map("{:.0f}".format),
        "of it training (s)": runs["train_seconds"].map("{:.0f}".format),
        "test accuracy": runs["test_accuracy"].map("{:.2%}".format),
        "originally reported": runs["reported"],
    })
    write_results(out, table, {"command": command, "machine": machine(), "rows": rows}, colalign=ALIGN)


if __name__ == "__main__":
    main()
