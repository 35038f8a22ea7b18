"""Benchmark: four ways of feeding the same jit-compiled train step, in images per second; writes JSON.

- `device, step per call, donated` (what the train stage does): the training set and the order of
  its batches live on the device, one compiled call per step picks its batch there, and the old
  training state's buffers are donated to the new one.
- `device, step per call, not donated`: the same without donation, so every step allocates a new state.
- `device, lax.scan over K steps`: one compiled call runs K steps, the host launches 1/K as often.
- `host batches`: each batch is sliced out of a NumPy array on the host and copied to the device.

Every way trains the default model (params.yaml's `train` section, any `--set` applied) from the
same initial state through the same order of batches, on the prepared training images of a fresh clone of HEAD (as the other
benchmarks, after its `dvc repro preprocess`); the first call (compilation) is timed apart from
the steady state, which is the median over `--repeats` blocks of `--steps` steps, the ways taking
turns block by block.

    python -m bench.feeding --out bench/results/feeding-cpu.json
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from bench.pipeline import machine, write_result
from bench.time_to_accuracy import prepare
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.training.step import epoch_order, init_state, make_optimizer, make_train_step


def training_step(cfg, total_steps: int) -> tuple:
    """(the pure train step, its initial state) for `cfg`, as the train stage builds them."""
    model = build_model(cfg.model, width=cfg.width, rngs=init_rngs(cfg.seed))
    tx = make_optimizer(cfg, total_steps)
    graphdef, _, state = init_state(model, tx, cfg.seed)
    return make_train_step(graphdef, tx, cfg), state


def feeders(step, images: np.ndarray, labels: np.ndarray, order: np.ndarray, scan_length: int) -> dict:
    """name -> run(state, first step, steps) -> state, each way feeding `step` the batches order[first:first+steps]."""
    on_device = jax.device_put((images, labels, order))

    def indexed(state, data, i):
        images, labels, order = data
        return step(state, (images[order[i]], labels[order[i]]))[0]

    donated, kept = jax.jit(indexed, donate_argnums=0), jax.jit(indexed)

    @jax.jit
    def scanned(state, data, first):
        return jax.lax.scan(lambda s, i: (indexed(s, data, i), None), state, first + np.arange(scan_length))[0]

    host_step = jax.jit(lambda state, batch: step(state, batch)[0], donate_argnums=0)

    def per_call(compiled):
        def run(state, first, steps):
            for i in range(first, first + steps):
                state = compiled(state, on_device, i)
            return state
        return run

    def by_scan(state, first, steps):
        for start in range(first, first + steps, scan_length):
            state = scanned(state, on_device, start)
        return state

    def from_host(state, first, steps):
        for i in range(first, first + steps):
            state = host_step(state, jax.device_put((images[order[i]], labels[order[i]])))
        return state

    return {
        "device, step per call, donated": per_call(donated),
        "device, step per call, not donated": per_call(kept),
        f"device, lax.scan over {scan_length} steps": by_scan,
        "host batches": from_host,
    }


def measure(ways: dict, state, steps: int, repeats: int, batch_size: int, first: int) -> dict:
    """Per way: the first call (compiling, then `first` steps) timed alone, then `repeats` blocks of
    `steps` steps, the ways taking turns block by block so that drift in the machine's speed
    (other load, clock changes) falls on all of them alike."""
    states, results, rates = {}, {}, {name: [] for name in ways}
    for name, run in ways.items():
        start = time.perf_counter()
        states[name] = jax.block_until_ready(run(jax.tree.map(np.array, state), 0, first))  # its own copy
        results[name] = {"first_call_seconds": round(time.perf_counter() - start, 2)}
    for r in range(repeats):
        for name, run in ways.items():
            start = time.perf_counter()
            states[name] = jax.block_until_ready(run(states[name], first + r * steps, steps))
            rates[name].append(steps * batch_size / (time.perf_counter() - start))
    for name, rate in rates.items():
        results[name].update(images_per_second=round(statistics.median(rate), 1),
                             images_per_second_min_max=[round(min(rate), 1), round(max(rate), 1)])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml key, e.g. train.width=16 (repeatable)")
    parser.add_argument("--steps", type=int, default=200, help="steps per timed block (a multiple of --scan-length)")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per way")
    parser.add_argument("--scan-length", type=int, default=50, help="steps per lax.scan call")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    if args.steps % args.scan_length:
        raise SystemExit(f"error: --steps {args.steps} must be a multiple of --scan-length {args.scan_length}")

    with tempfile.TemporaryDirectory(prefix="mnist-feeding-") as folder:
        cfg, (images, labels), _ = prepare(Path(folder), args.settings)
    total = args.scan_length + args.steps * args.repeats
    order = np.asarray(epoch_order(jax.random.key(cfg.seed), len(labels), cfg.batch_size))
    order = np.concatenate([order] * (total // len(order) + 1))[:total]
    step, state = training_step(cfg, total)

    ways = feeders(step, images, labels, order, args.scan_length)
    results = measure(ways, state, args.steps, args.repeats, cfg.batch_size, first=args.scan_length)
    for name, numbers in results.items():
        print(f"{name}: {numbers}")
    result = {"command": "python -m bench.feeding " + " ".join(sys.argv[1:]), "machine": machine(),
              "model": cfg.model, "width": cfg.width, "batch_size": cfg.batch_size, "ways": results}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
