"""Benchmark: the train stage as 2 processes of 2 CPU devices against 1 process, on the default
data: test accuracy and seconds per training step of each; writes JSON.

In a fresh clone of HEAD (with `--set` overrides, e.g. a shorter train.epochs), `dvc repro
preprocess`, then the train and evaluate stages once as one process and once with the train stage
under `mnist-dvc launch --processes 2 --cpu-devices 2`. Both see the same batches in the same order
(mnist_dvc.training.step), so they differ only by the order of floating-point sums across devices.

    python -m bench.multiprocess --set train.epochs=1 --seeds 0 1 2 --out bench/results/multiprocess-cpu.json
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.pipeline import clone_head, machine, override, run_dvc, summary, write_result
from mnist_dvc.config import paths

LAYOUTS = {"1 process x 1 device": [], "2 processes x 2 devices": ["mnist-dvc", "launch", "--processes", "2", "--cpu-devices", "2", "--"]}


def run(folder: Path, prefix: list[str]) -> dict:
    """Trains (from scratch) and evaluates in `folder`; the figures of that run."""
    shutil.rmtree(folder / paths.MODEL, ignore_errors=True)
    shutil.rmtree(folder / paths.CHECKPOINTS, ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for command in ([*prefix, "python", "-m", "stages.train"], ["python", "-m", "stages.evaluate"]):
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=7200)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    train = json.loads((folder / paths.TRAIN.metrics).read_text())
    metrics = json.loads((folder / paths.METRICS_JSON).read_text())
    return {"test_accuracy": metrics["accuracy"], "test_errors": metrics["errors"], "val_accuracy": train["val_accuracy"],
            "train_seconds": train["train_seconds"], "images_per_second": train["images_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="train.seed of each pair of runs")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    from mnist_dvc.config.params import load_params

    result = {"command": "python -m bench.multiprocess " + " ".join(sys.argv[1:]), "settings": args.settings, "machine": machine(),
              "runs": {layout: [] for layout in LAYOUTS}}
    with tempfile.TemporaryDirectory(prefix="mnist-multiprocess-") as name:
        folder = Path(name)
        clone_head(folder, args.settings)
        run_dvc(folder, "repro", "preprocess")
        batch_size = load_params("train", folder / "params.yaml").batch_size
        for seed in args.seeds:  # seeds outermost: a change in the machine's load touches both layouts alike
            override(folder / "params.yaml", [f"train.seed={seed}"])
            for layout, prefix in LAYOUTS.items():
                figures = {"seed": seed, **run(folder, prefix)}
                figures["seconds_per_step"] = round(batch_size / figures["images_per_second"], 4)
                result["runs"][layout].append(figures)
                print(layout, figures, flush=True)
    result["summary"] = {layout: {key: summary([run[key] for run in runs]) for key in ("test_accuracy", "seconds_per_step")}
                         for layout, runs in result["runs"].items()}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
