"""Benchmark: which XLA CPU instruction-set cap gives the same bits on every x86-64 CPU, and what it
costs; writes JSON.

Each setting of `--xla_cpu_max_isa` (native: no cap; AVX2; SSE4_2) runs in processes of its own
(XLA reads its flags once per process), the settings taking turns round by round so that drift in
the machine's speed falls on all alike. A run trains the default model (params.yaml's `train`,
`--set` applied) from its seed for `--steps` steps on the prepared training digits of a fresh clone
of HEAD, then predicts the 10,000 test digits, and reports:

- `weights`: SHA-256 of every trained weight's bytes, and `probs`: of the test probabilities, the
  first 16 hex digits; equal digests on two machines mean the same bits there;
- `images_per_second` of the training steps after the first (compiling) block, and the test
  digits' `digits_per_second`: medians (min-max) over the rounds.

`probe` is ../shared/tools/xla_bits.py's line for each setting, when that file is there: the same
200-step probe whose lines on other CPUs ../shared/cpu-measurements.md records, so this machine's
digests can be held against theirs.

    python -m bench.cpu_bits --out bench/results/cpu-bits-cpu.json
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pipeline import REPO, machine, write_result

SETTINGS = {"native": "", "AVX2": "AVX2", "SSE4_2": "SSE4_2"}  # name -> --xla_cpu_max_isa value ("" = no cap)
PROBE = REPO.parent / "shared" / "tools" / "xla_bits.py"


def digest(arrays) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        hasher.update(array.tobytes())
    return hasher.hexdigest()[:16]


def run_once(folder: Path, steps: int, block: int) -> dict:
    """One run in this process, under the XLA_FLAGS it was started with (see the module docstring)."""
    import jax
    import numpy as np

    from mnist_dvc.config import paths
    from mnist_dvc.config.params import load_params
    from mnist_dvc.io.prepared_sets import load_split
    from mnist_dvc.models.inference import neural_classifier, timed_predictions
    from mnist_dvc.training.loop import build_trainer, run_epoch

    cfg = load_params("train", folder / "params.yaml").model_copy(update={"epochs": steps // block})
    train, test = load_split(folder / paths.TRAIN_NPZ), load_split(folder / paths.TEST_NPZ)
    trainer = build_trainer(cfg, train, steps_per_epoch=block)
    state, seconds = trainer.initial_state, []
    for epoch in range(1, cfg.epochs + 1):  # blocks of `block` steps; the first compiles
        start = time.perf_counter()
        state, _, _ = run_epoch(trainer, state, epoch)
        jax.block_until_ready(state)
        seconds.append(time.perf_counter() - start)
    weights = [np.asarray(leaf) for leaf in jax.tree.leaves(jax.device_get(state.params))]
    probs, predict_seconds = timed_predictions(neural_classifier(trainer.eval_model(state)), test[0], 250, tta=False)
    return {"weights": digest(weights), "probs": digest([probs]),
            "images_per_second": block * cfg.batch_size * (len(seconds) - 1) / sum(seconds[1:]),
            "digits_per_second": len(probs) / predict_seconds}


def in_process(setting: str, *args: str) -> dict:
    """`python -m bench.cpu_bits --one ...` under `--xla_cpu_max_isa=<setting>`; its JSON line."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_cpu_max_isa={setting}"}
    done = subprocess.run([sys.executable, "-m", "bench.cpu_bits", "--one", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe(setting: str) -> str | None:
    if not PROBE.is_file():
        return None
    env = {**os.environ, "XLA_FLAGS": f"--xla_cpu_max_isa={setting}"}
    line = subprocess.run([sys.executable, str(PROBE)], env=env, capture_output=True, text=True, check=True).stdout
    return line.strip().splitlines()[-1].split(": ", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml key, e.g. train.width=16 (repeatable)")
    parser.add_argument("--steps", type=int, default=600, help="training steps per run, in blocks of --block")
    parser.add_argument("--block", type=int, default=100, help="steps per timed block; the first block compiles and is not timed")
    parser.add_argument("--rounds", type=int, default=3, help="runs per setting, the settings taking turns")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--one", type=Path, metavar="PROJECT", help=argparse.SUPPRESS)  # a single run, in a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_once(args.one, args.steps, args.block)))
        return
    if not args.out:
        parser.error("--out is required")

    from bench.time_to_accuracy import prepare

    runs = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="mnist-cpu-bits-") as folder:
        prepare(Path(folder), args.settings)
        for _ in range(args.rounds):
            for name, setting in SETTINGS.items():
                runs[name].append(in_process(setting, str(folder), "--steps", str(args.steps), "--block", str(args.block)))
                print(name, runs[name][-1], flush=True)

    results = {}
    for name, setting in SETTINGS.items():
        done = runs[name]
        results[name] = {
            "xla_flags": f"--xla_cpu_max_isa={setting}",
            "weights": sorted({run["weights"] for run in done}),  # one digest: the same bits every run
            "probs": sorted({run["probs"] for run in done}),
            **{key: {"median": round(statistics.median(run[key] for run in done), 1),
                     "min_max": [round(min(run[key] for run in done), 1), round(max(run[key] for run in done), 1)]}
               for key in ("images_per_second", "digits_per_second")},
            "probe": probe(setting),
        }
    result = {"command": "python -m bench.cpu_bits " + " ".join(sys.argv[1:]), "machine": machine(),
              "steps": args.steps, "settings": results}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
