"""Stage `evaluate`: scores the trained model on the prepared test set and shows examples of its work.

The test probabilities are calibrated by temperature scaling (`mnist_dvc.analysis.calibration`): one
temperature fitted on the validation split (data/prepared/val.npz, predicted like the test set:
same batch size, same views) divides the logits. It never changes which digit is predicted, so
accuracy, errors, macro F1, the per-digit table and the confusion matrix are those of the model;
only the confidences move. Every later stage reads the calibrated probabilities.

Outputs:
- eval/metrics.json: the headline figures, accuracy, loss, errors and macro F1 of the model as it
  is (byte-identical for identical predictions, hence no timings in it), and its calibration:
  `temperature`, `ece_before` / `ece_after` (expected calibration error in 15 bins, raw and
  calibrated) and `loss_calibrated` (the test loss after calibration; `loss` stays the raw one,
  comparable with earlier runs); and the accuracy against the labels a person reviewed
  (data/prepared/test_verdicts.npz, from labels/review.csv through the preprocess stage):
  `reviewed_accuracy` on the `reviewed_digits` test digits left after those judged unreadable, with
  the corrected label where one was judged wrong, and `test_verdicts`, how many verdicts that used.
  `accuracy` stays against the official labels, the figure every published result is comparable
  with; with no verdict the two agree;
- eval/per_digit.csv: precision, recall, F1 and support of each digit, a `dvc plots` bar chart;
- eval/speed.json: inference throughput (test digits per second, all views included with
  `evaluate.tta`; the validation pass is not timed), kept apart because it varies from run to run;
- eval/confusion.csv: one `actual,predicted` row per test digit, for DVC's confusion-matrix plot;
- eval/reliability.csv: the reliability diagram, `calibration.reliability_tables` of the raw and of
  the calibrated probabilities (column `probabilities`: "raw" or "calibrated");
- data/eval/probs.npz: the calibrated probabilities, read by the `ambiguous` stage instead of
  predicting again;
- data/eval/examples.csv, data/eval/examples/<test index>.png, data/eval/examples.png: right and
  wrong test digits with what the model said about them (calibrated confidences).
"""

import numpy as np
import pandas as pd

from mnist_dvc.analysis.answers import describe
from mnist_dvc.analysis.calibration import calibrate, calibration_figures, reliability_tables
from mnist_dvc.analysis.metrics import example_positions, per_digit, summarize
from mnist_dvc.analysis.pictures import digit_caption, save_digit_png, save_gallery
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import atomic_dir, save_npz, write_csv, write_json
from mnist_dvc.io.prepared_sets import load_split, load_test_set
from mnist_dvc.io.stage_outputs import read_npz
from mnist_dvc.io.verdicts import NO_LABEL
from mnist_dvc.models.inference import TTA_SHIFTS, predict_proba, timed_predictions
from mnist_dvc.models.saved import load_classifier

EXAMPLE_COLUMNS = ["index", "label", "prediction", "confidence", "second", "second_confidence", "correct"]


def write_examples(probs: np.ndarray, test: dict[str, np.ndarray], count: int) -> None:
    """The table, one PNG per digit and a gallery of `count` right and `count` wrong test digits.

    The PNGs show `original` (the raw test image), not the deskewed model input, since that is
    what a person recognises.
    """
    positions = example_positions(probs, test["labels"], count)
    table = describe(probs, test["labels"], positions, test["index"])
    write_csv(paths.EXAMPLES_CSV, table[EXAMPLE_COLUMNS])
    with atomic_dir(paths.EXAMPLES_DIR) as folder:
        for position, index in zip(positions, table["index"]):
            save_digit_png(test["original"][position], folder / f"{index}.png")
    right = int(table["correct"].sum())
    save_gallery(
        [test["original"][position] for position in positions],
        [digit_caption(row) for row in table.to_dict("records")],
        paths.EXAMPLES_PNG,
        title=f"Test digits: {right} right (most confident per digit), "
        f"{len(table) - right} wrong (most confident errors, red)",
        columns=min(count, 12),
        wrong=list(~table["correct"]),
    )


def reviewed_test_labels(test: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    """(the reviewed label of every test digit, `NO_LABEL` where judged unreadable; how many verdicts
    that took) from test_verdicts.npz, checked to describe the digits of test.npz."""
    verdicts = read_npz(paths.TEST_VERDICTS_NPZ, ("index", "labels", "verdicts"), "preprocess")
    if not np.array_equal(verdicts["index"], test["index"]) or verdicts["labels"].shape != test["labels"].shape:
        raise UserError(f"{paths.TEST_VERDICTS_NPZ}: made for other test digits than {paths.TEST_NPZ}; rerun the preprocess stage (dvc repro)")
    return verdicts["labels"], int(verdicts["verdicts"])


def reviewed_scores(raw: np.ndarray, reviewed: np.ndarray, verdicts: int) -> dict:
    """`reviewed_accuracy` of the predictions `raw` against the `reviewed` labels on the
    `reviewed_digits` not judged unreadable (null when none is left), and the `test_verdicts` used."""
    scored = reviewed != NO_LABEL
    accuracy = round(float((raw.argmax(axis=1)[scored] == reviewed[scored]).mean()), 6) if scored.any() else None
    return {"reviewed_accuracy": accuracy, "reviewed_digits": int(scored.sum()), "test_verdicts": verdicts}


def main() -> None:
    params = load_params("evaluate")
    test = load_test_set(paths.TEST_NPZ)
    reviewed_labels, verdicts = reviewed_test_labels(test)
    classifier = load_classifier(paths.MODEL)
    raw, seconds = timed_predictions(classifier, test["images"], params.batch_size, params.tta)
    val_images, val_labels = load_split(paths.VAL_NPZ)
    val_probs = predict_proba(classifier, val_images, params.batch_size, params.tta)  # as the test set was predicted
    try:
        probs, temperature = calibrate(raw, val_probs, val_labels)
    except ValueError as error:
        raise UserError(f"{paths.VAL_NPZ}: cannot fit the calibration temperature ({error}); "
                        "preprocess.val_size must hold out validation digits (rerun the preprocess stage)") from None
    labels = test["labels"]
    reviewed = reviewed_scores(raw, reviewed_labels, verdicts)
    metrics = summarize(raw, labels) | calibration_figures(raw, probs, labels, temperature) | reviewed
    write_json(paths.METRICS_JSON, metrics)
    write_csv(paths.PER_DIGIT_CSV, per_digit(raw, labels))
    throughput = len(labels) / max(seconds, 1e-9)
    write_json(paths.SPEED_JSON, {
        "inference_images_per_second": round(throughput, 1),
        "test_images": len(labels),
        "views_per_image": len(TTA_SHIFTS) if params.tta else 1,
        "seconds": round(seconds, 4),
    })
    write_csv(paths.CONFUSION_CSV, pd.DataFrame({"actual": labels.astype(np.int64), "predicted": raw.argmax(axis=1)}))
    write_csv(paths.RELIABILITY_CSV, reliability_tables(raw, probs, labels))
    save_npz(paths.PROBS_NPZ, probs=probs, labels=labels.astype(np.uint8), index=test["index"].astype(np.int64))
    write_examples(probs, test, params.examples)
    print(
        f"test accuracy {metrics['accuracy']:.2%} ({metrics['errors']} errors of {len(labels)}), "
        f"loss {metrics['loss']:.4f}; inference {throughput:,.0f} images/s; "
        f"temperature {temperature:.3f}: ECE {metrics['ece_before']:.4f} -> {metrics['ece_after']:.4f}, "
        f"loss {metrics['loss_calibrated']:.4f}; against the reviewed labels ({reviewed['test_verdicts']} verdicts): "
        + (f"{reviewed['reviewed_accuracy']:.2%} on {reviewed['reviewed_digits']} digits" if reviewed["reviewed_accuracy"] is not None
           else "every digit judged unreadable")
    )


if __name__ == "__main__":
    run_stage(main)
