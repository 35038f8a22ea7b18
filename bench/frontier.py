"""Benchmark: the accuracy-for-time frontier on this machine: test accuracy against seconds of training.

Each recipe (the shipped params.yaml, or a preset of bench/presets.yaml) is trained once per seed by
bench/ablation.py's `measure` (a fresh clone of HEAD, `dvc repro preprocess`, the train stage's own
loop and clock) and scored on the test set with and without test-time augmentation. With
`--pipelines PROJECT`, the frontier also gets the two recipes that are pipelines of their own, read
from a project where `dvc repro committee/dvc.yaml` and `dvc repro audit/dvc.yaml` have run (one run
each; their seeds are fixed by params.yaml): the committee (the members' training seconds added up)
and the second training (the audit's folds plus the retraining). Writes OUT.json (every run),
OUT.md (the table of docs/results.md) and OUT.png (accuracy against log training time).

    python -m bench.pipeline --runs 3 --keep /tmp/rerun --out bench/results/cpu-default.json
    (cd /tmp/rerun && dvc repro committee/dvc.yaml && dvc repro audit/dvc.yaml)
    python -m bench.frontier --seeds 0 1 2 --pipelines /tmp/rerun --out bench/results/frontier-cpu
"""

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from bench.ablation import measure
from bench.pipeline import machine, percent_spread, write_results
from bench.presets import preset_settings

RECIPES = ("fast99", "shifts_only", "default", "long_cpu")  # shortest to longest; "default" is params.yaml as shipped
# Published test accuracies (%), drawn as lines: they come with no time on a CPU to set them against.
ANCHORS = {"Simard et al. 2003": 99.6, "Ciresan et al. 2011, one network": 99.65, "Kaggle's best single CNNs": 99.75,
           "committees, Ciresan et al. 2012": 99.77}


def recipe_settings(name: str) -> list[str]:
    return [] if name == "default" else preset_settings(name)


def pipeline_points(project: Path) -> list[dict]:
    """The committee's and the second training's points, from the stage outputs of one project, each
    with whether its accuracy is that of test-time augmentation."""
    from mnist_dvc.config import paths

    def read(path: Path) -> dict:
        return json.loads((project / path).read_text())

    params = yaml.safe_load((project / "params.yaml").read_text())
    committee, retrain = read(paths.COMMITTEE_JSON), read(paths.RETRAIN_JSON)
    member_seconds = [read(paths.TrainOutputs.under(paths.COMMITTEE / name).metrics)["train_seconds"] for name in committee["members"]]
    fold_seconds = [pd.read_csv(project / paths.AuditFold.number(fold).history)["seconds"].sum() for fold in params["audit"]["folds"]]
    return [
        {"name": "committee", "settings": [f"committee.{key}={json.dumps(params['committee'][key])}" for key in ("models", "seeds", "tta")],
         "test_accuracy": committee["accuracy"], "tta": params["committee"]["tta"], "train_seconds": round(sum(member_seconds), 2)},
        {"name": "second training", "settings": [f"audit.epochs={params['audit']['epochs']}"],  # scored in one view (stages/retrain.py)
         "test_accuracy": retrain["test"]["accuracy"], "tta": False, "train_seconds": round(float(sum(fold_seconds)) + retrain["training"]["train_seconds"], 2)},
    ]


def plot(path: Path, result: dict) -> None:
    """Accuracy against training seconds on a log axis: each seed a dot, each recipe's median a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mnist_dvc.io.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for row in result["recipes"]:  # one colour per recipe: circles without TTA, triangles with
        colour, seconds = next(colours), [run["train_seconds"] for run in row["runs"]]
        for key, marker, label in (("final_test_accuracy", "o", ""), ("tta_test_accuracy", "^", ", TTA")):
            ax.scatter(seconds, [run[key] * 100 for run in row["runs"]], marker=marker, color=colour, alpha=0.35, s=18)
            ax.scatter([row["train_seconds"]["median"]], [row[key]["median"] * 100], marker=marker, color=colour, s=70,
                       label=row["name"] + label)
    for point in result["pipelines"]:
        ax.scatter([point["train_seconds"]], [point["test_accuracy"] * 100], marker="s", color=next(colours), s=70,
                   label=point["name"] + (" (one run, TTA)" if point["tta"] else " (one run)"))
    for place, (name, accuracy) in enumerate(ANCHORS.items()):  # labels alternate left and middle: some lines lie close
        ax.axhline(accuracy, color="grey", linestyle="--", linewidth=0.7)
        ax.annotate(name, (0.01 + 0.4 * (place % 2), accuracy), xycoords=("axes fraction", "data"), xytext=(0, 2),
                    textcoords="offset points", fontsize=6, color="grey")
    ax.set_ylim(top=max(ANCHORS.values()) + 0.05)
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['machine']['cpu']}, {result['machine']['cores']} cores, {result['machine']['date']}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png")
    plt.close(fig)


def write(out: Path, result: dict) -> None:
    """OUT.md: one row per recipe and pipeline, shortest training first; OUT.json; OUT.png (`plot`)."""
    rows = [(row["train_seconds"]["median"], {
        "recipe": row["name"], "settings": ", ".join(f"`{s}`" for s in row["settings"]) or "(as shipped)", "runs": str(len(row["runs"])),
        "training (s)": f"{row['train_seconds']['median']:.0f} ({row['train_seconds']['min']:.0f}-{row['train_seconds']['max']:.0f})",
        "test accuracy": percent_spread(row["final_test_accuracy"]), "with shift TTA": percent_spread(row["tta_test_accuracy"]),
    }) for row in result["recipes"]]
    rows += [(point["train_seconds"], {
        "recipe": point["name"], "settings": ", ".join(f"`{s}`" for s in point["settings"]), "runs": "1",
        "training (s)": f"{point['train_seconds']:.0f}",
        **{column: f"{point['test_accuracy']:.2%}" if point["tta"] == tta else "" for column, tta in (("test accuracy", False), ("with shift TTA", True))},
    }) for point in result["pipelines"]]
    table = pd.DataFrame([row for _, row in sorted(rows, key=lambda pair: pair[0])])
    write_results(out, table, result, colalign=("left", "left", "right", "right", "left", "left"))
    plot(out.with_suffix(".png"), result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of each run")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), metavar="NAME", help="'default' or preset names")
    parser.add_argument("--pipelines", type=Path, help="a project where the committee and audit pipelines have run")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json, OUT.md and OUT.png")
    args = parser.parse_args()

    result = {"command": "python -m bench.frontier " + " ".join(sys.argv[1:]), "machine": machine(), "seeds": args.seeds,
              "recipes": [], "pipelines": pipeline_points(args.pipelines) if args.pipelines else []}
    for name in args.recipes:
        result["recipes"].append(measure(name, recipe_settings(name), args.seeds))
        write(args.out, result)  # after every recipe, so a long run survives an interruption
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
