"""Benchmark: the ONNX export of the trained model against JAX on this CPU; writes JSON.

Needs a trained project (data/model and data/prepared/test.npz, from `dvc repro`) and the optional
extra `export` (`pip install -e ".[export]"`). It exports data/model to a temporary file as the
export stage does (`mnist_dvc.release.onnx_export.export_checked`: parity on every test digit, or
no file), then predicts the test digits with each runtime in the batches of `evaluate.batch_size`,
the passes alternating between JAX and onnxruntime so that both see the same load; each runtime's
first pass (JAX's compilation, onnxruntime's first allocations) is not timed. Both run with their
defaults, as `mnist-dvc predict` runs them. Recorded: the file's size beside the weights file's,
the parity figures, every pass's digits per second.

    python -m bench.export --out bench/results/export-cpu.json
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.pipeline import machine, write_result
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.models.inference import predict_proba
from mnist_dvc.models.saved import NEURAL_WEIGHTS, load_classifier, read_description
from mnist_dvc.release.onnx_export import export_checked, load_onnx_classifier


def rates(classifiers: dict, digits, batch_size: int, repeats: int) -> dict[str, list[float]]:
    """Digits per second of each classifier over all `digits`, `repeats` timed passes each, interleaved."""
    for classifier in classifiers.values():
        predict_proba(classifier, digits, batch_size)  # compiles (JAX) and allocates (onnxruntime): not timed
    found = {name: [] for name in classifiers}
    for _ in range(repeats):
        for name, classifier in classifiers.items():
            start = time.perf_counter()
            predict_proba(classifier, digits, batch_size)
            found[name].append(len(digits) / (time.perf_counter() - start))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed passes over the test digits, per runtime")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    digits = load_test_set(paths.TEST_NPZ)["images"]
    batch_size = load_params("evaluate").batch_size
    with tempfile.TemporaryDirectory(prefix="mnist-export-") as folder:
        onnx_path = Path(folder) / "model.onnx"
        record = export_checked(paths.MODEL, onnx_path, digits, batch_size)
        runs = rates({"jax": load_classifier(paths.MODEL), "onnxruntime": load_onnx_classifier(onnx_path, paths.MODEL)},
                     digits, batch_size, args.repeats)
    description = read_description(paths.MODEL)
    result = {
        "command": "python -m bench.export " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "model": {"name": description["model"], "width": description["width"], "parameters": description["parameters"],
                  "weights_bytes": (paths.MODEL / NEURAL_WEIGHTS).stat().st_size},
        "export": {key: record[key] for key in ("file_bytes", "opset", "converter", "runtime")},
        "parity": {key: record[key] for key in ("digits_compared", "top1_agreement", "max_prob_diff")},
        "batch_size": batch_size,
        "digits_per_second": {name: [round(rate, 1) for rate in values] for name, values in runs.items()},  # every timed pass
    }
    write_result(args.out, result)
    print(json.dumps({key: result[key] for key in ("export", "parity", "digits_per_second")}, indent=2))


if __name__ == "__main__":
    main()
