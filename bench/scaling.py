"""Benchmark: how the cost grows with devices, processes and batch size; writes JSON and Markdown.

- Training throughput of the default model and batch on the prepared training set of this project
  (data/prepared, from `dvc repro`), as 1 process with 1, 2 and 4 devices and as 2 processes of 2
  devices (`mnist-dvc launch`); on a CPU the "devices" are JAX_NUM_CPU_DEVICES slices of the same
  cores, so this measures the cost of splitting a batch more than a speed-up; a layout that fails
  is recorded with the reason. Each run trains
  `--steps` steps after `--warm-up` untimed ones (compilation), in a fresh process.
- The evaluate stage's inference throughput for batch sizes 1, 50, 250 and 1000 with the trained
  model in data/model, over the prepared test set (compilation excluded, as in the stage).

    python -m bench.scaling --out bench/results/scaling-cpu
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench.pipeline import machine, write_result
from mnist_dvc.config import paths
from mnist_dvc.io.atomic import write_text

LAYOUTS = [(1, 1), (1, 2), (1, 4), (2, 2)]  # (processes, devices per process)
BATCH_SIZES = [1, 50, 250, 1000]


def worker(steps: int, warm_up: int) -> None:
    """In each process of one layout: train the default model for warm_up + steps steps; the first
    process prints the timed steps' images per second as JSON."""
    from mnist_dvc.training.distributed import start_if_asked

    start_if_asked(os.environ)
    import jax

    from mnist_dvc.config.params import load_params
    from mnist_dvc.io.prepared_sets import load_split
    from mnist_dvc.training.distributed import is_writer
    from mnist_dvc.training.loop import build_trainer

    cfg = load_params("train")
    trainer = build_trainer(cfg, load_split(paths.TRAIN_NPZ), steps_per_epoch=warm_up + steps)
    state, start = trainer.initial_state, None
    for i, (state, _, _) in enumerate(trainer.epoch_steps(state, 1)):
        if i + 1 == warm_up:
            jax.block_until_ready(state)
            start = time.perf_counter()
    jax.block_until_ready(state)
    if is_writer():
        seconds = time.perf_counter() - start
        print(json.dumps({"images_per_second": steps * cfg.batch_size / seconds, "seconds_per_step": seconds / steps}))


def training(steps: int, warm_up: int, timeout_s: float) -> list[dict]:
    rows = []
    for processes, devices in LAYOUTS:
        me = [sys.executable, "-m", "bench.scaling", "--worker", "--steps", str(steps), "--warm-up", str(warm_up)]
        if processes == 1:
            command, env = me, {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices)}
        else:
            launcher = [sys.executable, "-c", "from mnist_dvc.app.cli import main; main()", "launch"]
            command, env = [*launcher, "--processes", str(processes), "--cpu-devices", str(devices), "--", *me], dict(os.environ)
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = run.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:  # every process of the layout, the launcher's children too
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
            stdout, stderr = "", f"no result within {timeout_s:g} s (hung)"
        # A layout that fails is recorded, not fatal: the table says which could not run here, and why.
        if run.returncode:
            reason = next((line for line in stderr.splitlines() if "Termination timeout" in line or "hung" in line), stderr.strip()[-300:])
            rows.append({"processes": processes, "devices per process": devices, "failed": reason[-400:]})
        else:
            rows.append({"processes": processes, "devices per process": devices, **json.loads(stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    return rows


def inference() -> list[dict]:
    from mnist_dvc.io.prepared_sets import load_test_set
    from mnist_dvc.models.inference import timed_predictions
    from mnist_dvc.models.saved import load_classifier

    images = load_test_set(paths.TEST_NPZ)["images"]
    classifier = load_classifier(paths.MODEL)
    rows = []
    for batch_size in BATCH_SIZES:
        _, seconds = timed_predictions(classifier, images, batch_size, tta=False)
        rows.append({"batch size": batch_size, "images_per_second": len(images) / seconds})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed training steps per layout")
    parser.add_argument("--warm-up", type=int, default=20, help="untimed steps first (compilation)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a layout counts as hung")
    parser.add_argument("--out", type=Path, help="writes OUT.json and OUT.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps, args.warm_up)
    result = {"command": "python -m bench.scaling " + " ".join(sys.argv[1:]), "machine": machine(),
              "training": training(args.steps, args.warm_up, args.timeout), "inference": inference()}
    write_result(args.out.with_suffix(".json"), result)
    tables = [pd.DataFrame(result["training"]).round(4).to_markdown(index=False), pd.DataFrame(result["inference"]).round(1).to_markdown(index=False)]
    write_text(args.out.with_suffix(".md"), "\n\n".join(tables) + "\n")
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
