"""Benchmark: a fresh clone's full `dvc repro`, timed end to end, several times; writes JSON.

Each run clones the committed HEAD into a new folder (so nothing is cached), optionally overrides
params (`--set train.epochs=4`), runs `dvc repro` with the download stage reading MNIST_MIRROR,
and records wall time, test accuracy, training throughput and inference throughput. The JSON
holds every run, their median and spread, the command and the machine.

    python -m bench.pipeline --runs 3 --out bench/results/cpu-default.json
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from mnist_dvc.config import paths
from mnist_dvc.io.atomic import write_text

REPO = Path(__file__).resolve().parents[1]


def machine() -> dict:
    import jax

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "jax_devices": [str(d) for d in jax.devices()],
            "jax": jax.__version__, "python": platform.python_version(), "date": datetime.date.today().isoformat()}


def override(params_file: Path, settings: list[str]) -> None:
    """Applies `KEY=VALUE` settings (values in YAML, as `dvc exp run -S` takes them) to a params file."""
    from mnist_dvc.config.settings import with_settings

    changes = dict(setting.split("=", 1) for setting in settings)
    params = with_settings(yaml.safe_load(params_file.read_text()), {key: yaml.safe_load(value) for key, value in changes.items()})
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def clone_head(folder: Path, settings: list[str] = ()) -> None:
    """A fresh clone of the committed HEAD in `folder` (nothing cached), with `settings` applied."""
    subprocess.run(["git", "clone", "-q", str(REPO), str(folder)], check=True)
    if settings:
        override(folder / "params.yaml", list(settings))


def run_dvc(folder: Path, *args: str) -> float:
    """Runs `dvc ARGS` in `folder` with this Python's tools first on PATH; returns its seconds and
    stops the benchmark with DVC's error output if it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    start = time.perf_counter()
    done = subprocess.run(["dvc", *args], cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed in {folder}:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def run_once(settings: list[str], keep: Path | None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="mnist-bench-"))
    try:
        clone_head(folder, settings)
        wall = run_dvc(folder, "repro")
        metrics = json.loads((folder / paths.METRICS_JSON).read_text())
        train = json.loads((folder / paths.TRAIN.metrics).read_text())
        speed = json.loads((folder / paths.SPEED_JSON).read_text())
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(folder, keep, symlinks=True)
        return {"wall_seconds": round(wall, 1), "test_accuracy": metrics["accuracy"], "test_errors": metrics["errors"],
                "train_seconds": train.get("train_seconds"), "train_images_per_second": train.get("images_per_second"),
                "inference_images_per_second": speed["inference_images_per_second"]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def write_result(path: Path, result: dict) -> None:
    """Writes a benchmark's JSON whole or not at all (`mnist_dvc.io.atomic`), laid out as every file in
    bench/results is: keys in the order the benchmark built them (not sorted, unlike the stages'
    `write_json`), indented by 2, NumPy numbers as plain floats."""
    write_text(path, json.dumps(result, indent=2, default=float) + "\n")


def write_results(out: Path, table: pd.DataFrame, result: dict, colalign: tuple[str, ...] | None = None) -> None:
    """A table benchmark's two files, each written whole or not at all: OUT.md, `table` as a
    Markdown table, and OUT.json, `result` (everything, every run included). Both are rendered before
    either is written, so a result that cannot be written leaves the last pair as it was."""
    markdown = table.to_markdown(index=False, **({"colalign": colalign} if colalign else {})) + "\n"
    write_result(out.with_suffix(".json"), result)
    write_text(out.with_suffix(".md"), markdown)


def percent_spread(stats: dict) -> str:
    """A `summary` of fractions as the docs show it: "99.49% (99.43%-99.51%)"."""
    return f"{stats['median']:.2%} ({stats['min']:.2%}-{stats['max']:.2%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml key in the clone, e.g. train.epochs=4 (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--keep", type=Path, help="copy the last run's project folder here (dvc.lock, eval/)")
    args = parser.parse_args()
    if "MNIST_MIRROR" not in os.environ:
        print("note: MNIST_MIRROR is not set, so the download stage uses the public mirrors", file=sys.stderr)

    runs = []
    for i in range(args.runs):
        runs.append(run_once(args.settings, args.keep if i == args.runs - 1 else None))
        print(f"run {i + 1}/{args.runs}: {runs[-1]}", flush=True)
    result = {
        "command": "python -m bench.pipeline " + " ".join(sys.argv[1:]),
        "settings": args.settings,
        "machine": machine(),
        "runs": runs,
        **{key: summary([run[key] for run in runs]) for key in
           ("wall_seconds", "test_accuracy", "train_images_per_second", "inference_images_per_second")},
    }
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("wall_seconds", "test_accuracy")}))


if __name__ == "__main__":
    main()
