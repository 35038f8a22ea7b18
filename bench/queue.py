"""Benchmark: throughput of queued experiments (`dvc queue start -j N`) on this machine; writes JSON.

In a fresh clone of HEAD that has run `dvc repro` once (with `--set` overrides, e.g. short
training), queues `--experiments` experiments that differ by train.seed, starts the queue with
`-j 1`, then `-j 2`, then `-j 2` with every job held to one thread (XLA_FLAGS and OMP_NUM_THREADS,
see docs/sharing-and-scaling.md), and records each batch's wall time from `dvc queue start` to the last success.

    python -m bench.queue --set train.epochs=1 --out bench/results/queue-cpu.json
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.pipeline import clone_head, machine, run_dvc, write_result

ONE_THREAD = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1", "OMP_NUM_THREADS": "1"}
CONFIGS = [("-j 1", 1, {}), ("-j 2", 2, {}), ("-j 2, one thread per job", 2, ONE_THREAD)]


def states(folder: Path, env: dict) -> dict[str, str]:
    shown = subprocess.run(["dvc", "queue", "status"], cwd=folder, env=env, capture_output=True, text=True, timeout=120).stdout
    return {fields[1]: fields[-1] for fields in map(str.split, shown.splitlines())
            if len(fields) >= 4 and re.fullmatch(r"[0-9a-f]{7}", fields[0])}


def batch(folder: Path, label: str, jobs: int, extra_env: dict, experiments: int, first_seed: int) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **extra_env}
    names = [f"q{first_seed + i}" for i in range(experiments)]
    for i, name in enumerate(names):
        subprocess.run(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"train.seed={first_seed + i}"],
                       cwd=folder, env=env, check=True, capture_output=True, timeout=300)
    start = time.perf_counter()
    subprocess.run(["dvc", "queue", "start", "-j", str(jobs)], cwd=folder, env=env, check=True, capture_output=True, timeout=300)
    try:
        while True:
            now = {name: states(folder, env).get(name) for name in names}
            if all(state not in ("Queued", "Running", None) for state in now.values()):
                break
            if time.perf_counter() - start > 3600:
                raise SystemExit(f"{label}: not done after an hour: {now}")
            time.sleep(2)
    finally:
        subprocess.run(["dvc", "queue", "stop", "--kill"], cwd=folder, env=env, capture_output=True, timeout=300)
    wall = time.perf_counter() - start
    if any(state != "Success" for state in now.values()):
        raise SystemExit(f"{label}: {now}")
    return {"config": label, "jobs": jobs, "experiments": experiments, "wall_seconds": round(wall, 1),
            "experiments_per_minute": round(60 * experiments / wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--experiments", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    result = {"command": "python -m bench.queue " + " ".join(sys.argv[1:]), "settings": args.settings, "machine": machine(), "batches": []}
    with tempfile.TemporaryDirectory(prefix="mnist-queue-") as name:
        folder = Path(name)
        clone_head(folder, args.settings)
        run_dvc(folder, "repro")
        for i, (label, jobs, extra_env) in enumerate(CONFIGS):
            result["batches"].append(batch(folder, label, jobs, extra_env, args.experiments, 100 * (i + 1)))
            print(result["batches"][-1], flush=True)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
