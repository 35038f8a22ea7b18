"""Stage `ambiguous`: the test digits the model is least sure about, under the definitions of
`mnist_dvc.analysis.ambiguity`, and why each is ambiguous.

Reads the (calibrated) probabilities saved by `evaluate` (no second prediction pass), the
temperature that calibrated them (eval/metrics.json) and the test images; for the explanations, the model (data/model), the training digits it learnt from
(data/prepared/train.npz, each digit once) and the official training file (data/raw, to show them
as written).
Writes, inside data/ambiguous (replaced as a whole, so a crash leaves the previous result):
- <definition>/<test index>.png: each chosen digit, upscaled;
- <definition>/table.csv: what the model said about each, most ambiguous first;
- galleries/<definition>.png: all of a definition's digits on one captioned page;
- galleries/<definition>-explained.png: the same digits, one row each: the digit, its saliency map,
  its 5 nearest training digits of the predicted class and of the given one (of the runner-up where
  the prediction is right), by distance in the model's last hidden layer (`mnist_dvc.analysis.explain`);
  left out, with one printed line, when the model is a scikit-learn one (no hidden layer, no gradient);
- summary.json: every definition's description and table, and `temperature`: the one that
  calibrated the probabilities (eval/metrics.json's), so that new digits' probabilities are
  calibrated alike before they are held against the tables' scores (`mnist-dvc`, the predict stage);
- review/: the test digits' review queue for `mnist-dvc review`, the first `review.top.test` test
  digits by label quality, flagged ones first (`mnist_dvc.analysis.review_queue`: queue.csv,
  digits/, explained/ (one explained row per digit, drawn in the same pass as the galleries), gallery.png).
A definition that finds fewer than `top_n` digits (few errors, say) reports the ones it found.
"""

import numpy as np

from mnist_dvc.analysis.ambiguity import DEFINITIONS
from mnist_dvc.analysis.answers import describe
from mnist_dvc.analysis.calibration import recorded_temperature
from mnist_dvc.analysis.explain import DigitsToExplain, Gallery, save_explained_galleries
from mnist_dvc.analysis.pictures import digit_caption, save_digit_png, save_gallery
from mnist_dvc.analysis.review_queue import explained_galleries, review_queue, write_queue
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import atomic_dir, write_csv, write_json
from mnist_dvc.io.stage_outputs import read_json, read_npz


def load_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """probs, labels, test indices, raw images and the model's input images, checked to describe
    the same test digits."""
    predicted = read_npz(paths.PROBS_NPZ, ("probs", "labels", "index"), "evaluate")
    test = read_npz(paths.TEST_NPZ, ("images", "original", "index"), "preprocess")
    probs, labels, index = predicted["probs"], predicted["labels"], predicted["index"]
    n = len(labels)
    if probs.shape != (n, 10) or index.shape != (n,):
        raise UserError(f"{paths.PROBS_NPZ}: probs {probs.shape} / index {index.shape} do not fit {n} labels")
    if test["original"].shape != (n, 28, 28) or test["images"].shape != (n, 28, 28) or not np.array_equal(test["index"], index):
        raise UserError(f"{paths.PROBS_NPZ}: does not match the test digits of {paths.TEST_NPZ}; rerun the evaluate stage")
    return probs, labels, index, test["original"], test["images"]


def calibration_temperature() -> float:
    """The temperature evaluate calibrated probs.npz with: eval/metrics.json's `temperature`;
    `UserError` naming the file when it holds none (an older evaluate stage)."""
    temperature = recorded_temperature(read_json(paths.METRICS_JSON, "evaluate"))
    if temperature is None:
        raise UserError(f"{paths.METRICS_JSON}: no calibration `temperature`; rerun the evaluate stage (dvc repro)")
    return temperature


def title(name: str, shown: int, top_n: int) -> str:
    description = DEFINITIONS[name].__doc__.split(":")[0].rstrip(".")
    return f"{name}: {description} ({shown} of top {top_n})"


def main() -> None:
    top_n, queue_length = load_params("ambiguous").top_n, load_params("review").top.test
    probs, labels, index, originals, inputs = load_inputs()
    summary, shown = {"temperature": calibration_temperature()}, {}
    with atomic_dir(paths.AMBIGUOUS) as folder:
        for name, definition in DEFINITIONS.items():
            positions = definition(probs, labels, top_n)
            table = describe(probs, labels, positions, index)
            for position, test_index in zip(positions, table["index"]):
                save_digit_png(originals[position], folder / name / f"{test_index}.png")
            write_csv(folder / name / paths.AMBIGUOUS_TABLE, table)
            rows = table.to_dict("records")
            captions, heading = [digit_caption(row) for row in rows], title(name, len(rows), top_n)
            save_gallery([originals[position] for position in positions], captions, folder / "galleries" / f"{name}.png",
                         title=heading, wrong=list(~table["correct"]))
            summary[name] = {"description": definition.__doc__, "digits": rows}
            shown[name] = (positions, captions, heading)
            print(f"{name}: {len(rows)} digits")
        write_json(folder / paths.AMBIGUOUS_SUMMARY.name, summary)
        queue = review_queue("test", probs, labels, index, queue_length)
        queue_folder = folder / paths.REVIEW_QUEUE_TEST.relative_to(paths.AMBIGUOUS)
        # Every digit once, however many definitions and the queue show it.
        every = np.unique(np.concatenate([*(positions for positions, _, _ in shown.values()), queue.positions]))
        galleries = [Gallery(np.searchsorted(every, positions), captions, folder / "galleries" / f"{name}-explained.png", heading)
                     for name, (positions, captions, heading) in shown.items()]
        galleries += explained_galleries(queue, queue_folder, np.searchsorted(every, queue.positions))
        explained = save_explained_galleries(paths.MODEL, paths.EXPLAIN_BANK,
                                             DigitsToExplain(inputs[every], originals[every], probs[every], labels[every]), galleries)
        write_queue(queue_folder, queue, originals, explained)
        print(f"review queue: {len(queue.table)} test digits, {int(queue.table['flagged'].sum())} of them flagged")


if __name__ == "__main__":
    run_stage(main)
