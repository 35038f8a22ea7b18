"""Benchmark: seconds of training until test accuracy first reaches a target (99.0% by default).

Clones the committed HEAD into a temporary folder, applies a preset from bench/presets.yaml and any
`--set` overrides to its params.yaml, runs `dvc repro preprocess` there (the download stage reads
MNIST_MIRROR), then trains once per seed in this process with the train stage's own loop (`mnist_dvc.training.loop.run_epoch`).
Every `--eval-every` training images the clock stops while the test set is scored with the weights the
train stage would save. The clock counts training only: compiling the step is included,
scoring is not. The JSON holds every run's curve, the median and spread of the seconds to the
target, training throughput and final accuracy, the command and the machine.

With `--peer SCRIPT` (../shared/peers/run-flax-example.sh: google/flax's own examples/mnist, unmodified),
each of our seeds is followed by one run of the peer on the same CPU, alternating so that both see the
same machine. The peer's clock is the same (training only, its first step's compilation included, its
per-epoch test pass left out); the JSON keeps its every epoch, its source commit, and the ratio of our
median seconds to the target to the peer's.

    python -m bench.time_to_accuracy --preset fast99 --seeds 0 1 2 --out bench/results/time-to-99-cpu.json
    python -m bench.time_to_accuracy --preset fast99 --seeds 0 1 --peer ../shared/peers/run-flax-example.sh \
        --out bench/results/time-to-99-peer-cpu.json
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pipeline import clone_head, machine, run_dvc, summary, write_result
from bench.presets import preset_settings

EVAL_EVERY = 6400  # training images between scorings of the test set: 0.12 epochs


def prepare(folder: Path, settings: list[str]) -> tuple:
    """(train params, train split, test split) of a fresh clone of HEAD in `folder` with `settings`
    applied, after its `dvc repro preprocess`."""
    from mnist_dvc.config import paths
    from mnist_dvc.config.params import load_params
    from mnist_dvc.io.prepared_sets import load_split

    clone_head(folder, settings)
    run_dvc(folder, "repro", "preprocess")
    cfg = load_params("train", folder / "params.yaml")
    return cfg, load_split(folder / paths.TRAIN_NPZ), load_split(folder / paths.TEST_NPZ)


def train_and_score(cfg, train: tuple, test: tuple, target: float, eval_every: int, finish=None) -> dict:
    """Trains `cfg` to the end, scoring the test set every `eval_every` images and at the end.
    `finish`, if given, takes the trained model (as the train stage would save it) and returns
    more entries for the run's record."""
    import jax

    from mnist_dvc.training.loop import build_trainer, run_epoch

    trainer = build_trainer(cfg, train)
    steps_per_epoch = trainer.steps_per_epoch
    total, every = steps_per_epoch * cfg.epochs, max(1, eval_every // cfg.batch_size)
    trained, started, curve = 0.0, time.perf_counter(), []  # seconds trained so far; when the clock last started

    def score_if_due(step: int, state) -> None:
        nonlocal trained, started
        if step % every and step != total:
            return
        jax.block_until_ready(state)
        trained += time.perf_counter() - started
        _, accuracy = trainer.evaluate(state, *test)
        curve.append({"step": step, "epochs": round(step / steps_per_epoch, 3),
                      "train_seconds": round(trained, 2), "test_accuracy": accuracy})
        started = time.perf_counter()  # epochs run back to back on the clock; only scoring is left out

    state = trainer.initial_state
    for epoch in range(1, cfg.epochs + 1):
        state, _, _ = run_epoch(trainer, state, epoch, after_step=score_if_due)
    reached = next((point for point in curve if point["test_accuracy"] >= target), None)
    extra = finish(trainer.eval_model(state)) if finish else {}
    return {
        "seed": cfg.seed,
        "seconds_to_target": reached and reached["train_seconds"],
        "epochs_to_target": reached and reached["epochs"],
        "train_seconds": curve[-1]["train_seconds"],
        "train_images_per_second": round(total * cfg.batch_size / curve[-1]["train_seconds"], 1),
        "final_test_accuracy": curve[-1]["test_accuracy"],
        **extra,
        "curve": curve,
    }


PEER_EPOCH = re.compile(r"\[\s*([\d.]+)s\] epoch\s+(\d+)\s+test_accuracy\s+([\d.]+)%\s+train_clock\s+([\d.]+)s")


def run_peer(script: Path, target: float) -> dict:
    """One run of the peer script: its source, every epoch (seconds since its process started, its
    training clock, test accuracy) and the training seconds at the first epoch at or above `target`."""
    done = subprocess.run(["bash", str(script)], env={**os.environ, "FLAXPEER_TARGET": str(target * 100)},
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{script} failed with exit code {done.returncode}:\n{done.stdout[-3000:]}")
    curve = [{"epoch": int(epoch), "process_seconds": float(since), "train_seconds": float(train), "test_accuracy": float(accuracy) / 100}
             for since, epoch, accuracy, train in PEER_EPOCH.findall(done.stdout)]
    if not curve:
        raise SystemExit(f"{script}: no epoch lines in its output:\n{done.stdout[-3000:]}")
    reached = next((point for point in curve if point["test_accuracy"] >= target), None)
    return {"source": done.stdout.splitlines()[0].removeprefix("example: "),
            "seconds_to_target": reached and reached["train_seconds"], "epochs_to_target": reached and reached["epoch"],
            "final_test_accuracy": curve[-1]["test_accuracy"], "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", help="a preset name from bench/presets.yaml")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml key after the preset, e.g. train.epochs=2 (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="train.seed of each run")
    parser.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help="training images between scorings of the test set")
    parser.add_argument("--peer", type=Path, help="a peer's script to run after each seed (../shared/peers/run-flax-example.sh)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    settings = (preset_settings(args.preset) if args.preset else []) + args.settings

    runs, peer_runs = [], []
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as name:
        cfg, train, test = prepare(Path(name), settings)
        for seed in args.seeds:
            runs.append(train_and_score(cfg.model_copy(update={"seed": seed}), train, test, args.target, args.eval_every))
            print(f"seed {seed}: " + json.dumps({k: v for k, v in runs[-1].items() if k != "curve"}), flush=True)
            if args.peer:
                peer_runs.append(run_peer(args.peer, args.target))
                print("peer: " + json.dumps({k: v for k, v in peer_runs[-1].items() if k != "curve"}), flush=True)

    reached = [run["seconds_to_target"] for run in runs if run["seconds_to_target"] is not None]
    result = {
        "command": "python -m bench.time_to_accuracy " + " ".join(sys.argv[1:]),
        "preset": args.preset,
        "settings": settings,
        "target": args.target,
        "machine": machine(),
        "runs_reaching_target": f"{len(reached)} of {len(runs)}",
        "seconds_to_target": summary(reached) if reached else None,
        **{key: summary([run[key] for run in runs]) for key in
           ("train_seconds", "train_images_per_second", "final_test_accuracy")},
        "runs": runs,
    }
    if args.peer:
        peer_reached = [run["seconds_to_target"] for run in peer_runs if run["seconds_to_target"] is not None]
        result["peer"] = {
            "script": args.peer.name, "source": peer_runs[0]["source"],
            "runs_reaching_target": f"{len(peer_reached)} of {len(peer_runs)}",
            "seconds_to_target": summary(peer_reached) if peer_reached else None,
            "final_test_accuracy": summary([run["final_test_accuracy"] for run in peer_runs]),
            "ours_over_peer": round(result["seconds_to_target"]["median"] / summary(peer_reached)["median"], 4)
            if reached and peer_reached else None,
            "runs": peer_runs,
        }
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("runs_reaching_target", "seconds_to_target", "final_test_accuracy")}))


if __name__ == "__main__":
    main()
