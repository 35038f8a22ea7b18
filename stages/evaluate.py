"""Stage `evaluate`: scores the trained model on the prepared test set and shows examples of its work.

Outputs:
- eval/metrics.json: accuracy, loss, errors, macro F1, per-digit scores (byte-identical for identical
  predictions, hence no timings in it);
- eval/speed.json: inference throughput (test digits per second, all views included with
  `evaluate.tta`), kept apart because it varies from run to run;
- eval/confusion.csv: one `actual,predicted` row per test digit, for DVC's confusion-matrix plot;
- data/eval/probs.npz: the probabilities, read by the `ambiguous` stage instead of predicting again;
- data/eval/examples.csv, data/eval/examples/<test index>.png, data/eval/examples.png: right and
  wrong test digits with what the model said about them.
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stages.ambiguity import describe
from stages.atomic import atomic_dir, save_npz, write_json
from stages.errors import UserError, run_stage
from stages.metrics import example_positions, summarize
from stages.npz import read_npz
from stages.params import load_params
from stages.predict import TTA_SHIFTS, load_classifier, predict_proba
from stages.render import digit_caption, save_digit_png, save_gallery, write_csv

TEST_SET = Path("data/prepared/test.npz")
MODEL_DIR = Path("data/model")
METRICS_JSON = Path("eval/metrics.json")
SPEED_JSON = Path("eval/speed.json")
CONFUSION_CSV = Path("eval/confusion.csv")
PROBS_NPZ = Path("data/eval/probs.npz")
EXAMPLES_CSV = Path("data/eval/examples.csv")
EXAMPLES_DIR = Path("data/eval/examples")
EXAMPLES_PNG = Path("data/eval/examples.png")
TEST_ARRAYS = ("images", "labels", "original", "index")
EXAMPLE_COLUMNS = ("index", "label", "prediction", "confidence", "second", "second_confidence", "correct")


def load_test_set(path: Path = TEST_SET) -> dict[str, np.ndarray]:
    """Reads test.npz (images, labels, original, index) and checks that the arrays fit together."""
    arrays = read_npz(path, TEST_ARRAYS, "preprocess")
    n = len(arrays["labels"])
    for key in ("images", "original"):
        if arrays[key].dtype != np.uint8 or arrays[key].shape != (n, 28, 28):
            raise UserError(f"{path}: `{key}` is {arrays[key].dtype} {arrays[key].shape}, expected uint8 ({n}, 28, 28)")
    if n == 0 or arrays["labels"].ndim != 1 or arrays["index"].shape != (n,):
        raise UserError(f"{path}: expected at least one digit and equal-length labels and index")
    if arrays["labels"].max() > 9:
        raise UserError(f"{path}: labels must be digits 0-9, found {int(arrays['labels'].max())}")
    return arrays


def timed_predictions(
    classifier: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int, tta: bool = False
) -> tuple[np.ndarray, float]:
    """Probabilities for all images and the seconds they took (all five views each with `tta`),
    compile time excluded.

    One batch is predicted first and thrown away, so JIT compilation (seconds for a CNN) does not
    count as inference time; it goes through `predict_proba` to get the same padded batch shape.
    """
    predict_proba(classifier, images[:batch_size], batch_size)
    start = time.perf_counter()
    probs = np.asarray(predict_proba(classifier, images, batch_size, tta), dtype=np.float32)
    return probs, time.perf_counter() - start


def write_examples(probs: np.ndarray, test: dict[str, np.ndarray], count: int) -> None:
    """The table, one PNG per digit and a gallery of `count` right and `count` wrong test digits.

    The PNGs show `original` (the raw test image), not the deskewed model input, since that is
    what a person recognises.
    """
    positions = example_positions(probs, test["labels"], count)
    rows = describe(probs, test["labels"], positions, test["index"])
    write_csv(EXAMPLES_CSV, rows, EXAMPLE_COLUMNS)
    with atomic_dir(EXAMPLES_DIR) as folder:
        for position, row in zip(positions, rows):
            save_digit_png(test["original"][position], folder / f"{row['index']}.png")
    right = sum(row["correct"] for row in rows)
    save_gallery(
        [test["original"][position] for position in positions],
        [digit_caption(row) for row in rows],
        EXAMPLES_PNG,
        title=f"Test digits: {right} right (most confident per digit), "
        f"{len(rows) - right} wrong (most confident errors, red)",
        columns=min(count, 12),
        wrong=[not row["correct"] for row in rows],
    )


def main() -> None:
    params = load_params("evaluate")
    test = load_test_set()
    classifier = load_classifier(MODEL_DIR)
    probs, seconds = timed_predictions(classifier, test["images"], params.batch_size, params.tta)
    labels = test["labels"]
    metrics = summarize(probs, labels)
    write_json(METRICS_JSON, metrics)
    throughput = len(labels) / max(seconds, 1e-9)
    write_json(SPEED_JSON, {
        "inference_images_per_second": round(throughput, 1),
        "test_images": len(labels),
        "views_per_image": len(TTA_SHIFTS) if params.tta else 1,
        "seconds": round(seconds, 4),
    })
    confusion = ({"actual": int(a), "predicted": int(p)} for a, p in zip(labels, probs.argmax(axis=1)))
    write_csv(CONFUSION_CSV, confusion, ("actual", "predicted"))
    save_npz(PROBS_NPZ, probs=probs, labels=labels.astype(np.uint8), index=test["index"].astype(np.int64))
    write_examples(probs, test, params.examples)
    print(
        f"test accuracy {metrics['accuracy']:.2%} ({metrics['errors']} errors of {len(labels)}), "
        f"loss {metrics['loss']:.4f}; inference {throughput:,.0f} images/s"
    )


if __name__ == "__main__":
    run_stage(main)
