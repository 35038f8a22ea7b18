"""Stage `audit` (audit/dvc.yaml, after every `fold`): the training and test digits most likely
mislabelled, ranked by confident learning (`mnist_dvc.analysis.label_issues`).

Every training digit's probabilities come from the one fold model that never saw it; every test
digit's are the average of all fold models' (none saw a test digit). Flagged digits are ranked by
label quality (the probability of the given label), lowest first. The training digits and their
labels are those the folds trained on (`mnist_dvc.audit.cross_validation.audited_digits`): after a
person's verdicts when `preprocess.review` is on, without the digits judged ambiguous.

Outputs, for split train and test:
- data/audit/<split>/issues.csv: split, index (place in the official MNIST file), given_label,
  suggested_label, label_quality, rank; data/audit/train/issues.csv is the table a later stage of
  the main pipeline may read;
- data/audit/<split>/<index>.png: every flagged digit as written (not deskewed);
- data/audit/<split>/pairs.csv: flagged digits per (given, suggested) label, commonest first;
- data/audit/<split>/quality.csv: every digit's index, given_label, suggested_label and label_quality
  (flagged or not), for the second training's hardest correctly labelled digits (stages/retrain.py);
- data/audit/galleries/<split>.png: the first `audit.top_n` flagged digits, captioned;
- data/audit/galleries/<split>-explained.png: the same digits, one row each: the digit, its saliency
  map and its 5 nearest training digits of the suggested and of the given label (of the runner-up
  where the two agree), all from the main model (data/model: distance in its last hidden layer,
  its gradient) among the main model's training digits (data/prepared/train.npz, each once; a
  flagged training digit is never its own neighbour); see `mnist_dvc.analysis.explain`. Left out, with one
  printed line, when the main model is a scikit-learn one (no hidden layer, no gradient);
- data/audit/review/<split>/: each split's review queue for `mnist-dvc review`, the first
  `review.top.<split>` digits, flagged ones first, then by label quality
  (`mnist_dvc.analysis.review_queue`: queue.csv, digits/, explained/, gallery.png), explained in the
  same pass as the galleries. A training digit whose label a person corrected is not queued again;
- eval/audit.json (DVC metrics): digits and flagged digits per split, the fold models' out-of-sample
  accuracy on the training digits and the averaged fold models' test accuracy.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from mnist_dvc.analysis.calibration import calibrated_probs, fit_temperature, logits_from_probs
from mnist_dvc.analysis.explain import DigitsToExplain, Gallery, save_explained_galleries, together
from mnist_dvc.analysis.label_issues import pair_counts, quality_table, rank_label_issues
from mnist_dvc.analysis.metrics import summarize
from mnist_dvc.analysis.pictures import save_digit_png, save_gallery
from mnist_dvc.analysis.review_queue import explained_galleries, review_queue, write_queue
from mnist_dvc.audit.cross_validation import FOLD_ARRAYS, AuditedDigits, audited_digits, combine_folds, fold_fits
from mnist_dvc.audit.issue_tables import issue_caption, issue_table
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.digits.preparation import prepare
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import atomic_dir, write_csv, write_json
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.io.stage_outputs import read_json, read_npz

ISSUES_CSV, QUALITY_CSV, PAIRS_CSV = (path.name for path in (paths.AUDIT_TRAIN_ISSUES, paths.AUDIT_TRAIN_QUALITY, paths.AUDIT_TRAIN_PAIRS))  # in each split's folder
RERUN = "rerun the audit (dvc repro audit/dvc.yaml)"
TITLES = {
    "train": "Training digits most likely mislabelled (confident learning, out-of-fold probabilities)",
    "test": "Test digits most likely mislabelled (confident learning, the fold models' average)",
}


def read_folds(folds: list[int], digits: AuditedDigits, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold probabilities of every training digit, the fold models' mean test probabilities),
    checked to fit these digits; a fold made from other data or settings is named."""
    parts = []
    for fold in folds:
        path = paths.AuditFold.number(fold).probs
        parts.append(read_npz(path, FOLD_ARRAYS, f"audit fold@{fold}"))
        if not fold_fits(parts[-1], digits.index, digits.labels, n_test):
            raise UserError(f"{path}: made for other digits than these; {RERUN}")
    try:
        return combine_folds(digits.index, parts)
    except ValueError as error:
        raise UserError(f"{paths.AUDIT_FOLDS}: the folds do not cover the training digits once each ({error}); {RERUN}") from None


def write_split(folder: Path, table: pd.DataFrame, quality: pd.DataFrame, positions: np.ndarray, originals: np.ndarray) -> None:
    """One split's folder, whole: its issue table, every digit's label quality, its pair counts and
    every flagged digit as written."""
    with atomic_dir(folder) as tmp:
        write_csv(tmp / ISSUES_CSV, table)
        write_csv(tmp / QUALITY_CSV, quality)
        write_csv(tmp / PAIRS_CSV, pair_counts(table))
        for index, position in zip(table["index"], positions):
            save_digit_png(originals[position], tmp / f"{index}.png")


def main() -> None:
    audit, train_subset, queue_length = load_params("audit"), load_params("preprocess").train_subset, load_params("review").top
    digits = audited_digits(paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS, paths.TRAIN_LABELS_NPZ, train_subset)
    labels = digits.labels
    test = load_test_set(paths.TEST_NPZ)
    raw_train, raw_test = read_folds(audit.folds, digits, len(test["labels"]))
    # Confident learning's per-class thresholds need calibrated probabilities: one temperature,
    # fitted on the out-of-fold probabilities of all training digits, applied to both sets.
    temperature = fit_temperature(logits_from_probs(raw_train), labels)
    train_probs, test_probs = (calibrated_probs(probs, temperature) for probs in (raw_train, raw_test))

    preparation = read_json(paths.PREPARATION_JSON, "preprocess")
    splits = {  # split: (its folder, probabilities, given labels, digits as written, index in the official file, model inputs,
        #                 the digits its review queue may hold, its length)
        "train": (paths.AUDIT_TRAIN, train_probs, labels, digits.images, digits.index, lambda at: prepare(digits.images[at], preparation),
                  labels == digits.official, queue_length.train),
        "test": (paths.AUDIT_TEST, test_probs, test["labels"], test["original"], test["index"], lambda at: test["images"][at],
                 None, queue_length.test),
    }
    flagged, explained, queues, queue_galleries, explained_so_far = {}, [], {}, [], 0
    with atomic_dir(paths.AUDIT_GALLERIES) as galleries, atomic_dir(paths.AUDIT_REVIEW) as review:
        for split, (folder, probs, given, originals, index, model_inputs, candidates, length) in splits.items():
            issues = rank_label_issues(probs, given)
            table = issue_table(split, issues, index)
            write_split(folder, table, quality_table(probs, given, index), issues["position"].to_numpy(), originals)
            shown = issues["position"].to_numpy()[: audit.top_n]
            captions = [issue_caption(row) for _, row in table.head(audit.top_n).iterrows()]
            title = f"{TITLES[split]}: the first {len(shown)} of {len(table)} flagged, given label \u2192 suggested"
            save_gallery([originals[position] for position in shown], captions, galleries / f"{split}.png", title=title)
            queues[split] = review_queue(split, probs, given, index, length, flagged=issues["position"].to_numpy(), candidates=candidates)
            # The gallery's and the queue's digits, each once, explained with every other split's in one pass.
            # A training digit is in the bank the neighbours come from, but never its own neighbour.
            every = np.unique(np.concatenate([shown, queues[split].positions]))
            digits_here = DigitsToExplain(model_inputs(every), originals[every], probs[every], given[every],
                                          training_index=index[every] if split == "train" else None)
            explained.append((digits_here, Gallery(np.searchsorted(every, shown), captions, galleries / f"{split}-explained.png", title)))
            queue_galleries += explained_galleries(queues[split], review / split, explained_so_far + np.searchsorted(every, queues[split].positions))
            explained_so_far += len(every)
            flagged[split] = len(table)
        digits_to_explain, gallery_list = together(explained)
        drawn = save_explained_galleries(paths.MODEL, paths.EXPLAIN_BANK, digits_to_explain, [*gallery_list, *queue_galleries],
                                         chosen="suggested", what="flagged and queued digits")
        for split, (_, _, _, originals, *_) in splits.items():
            write_queue(review / split, queues[split], originals, drawn)

    train_scores, test_scores = summarize(train_probs, labels), summarize(test_probs, test["labels"])
    write_json(paths.AUDIT_JSON, {
        "folds": len(audit.folds),
        "temperature": round(temperature, 6),
        "train": {"digits": len(labels), "flagged": flagged["train"], "out_of_fold_accuracy": train_scores["accuracy"]},
        "test": {"digits": len(test["labels"]), "flagged": flagged["test"], "accuracy": test_scores["accuracy"]},
    })
    print(f"audit over {len(audit.folds)} folds, temperature {temperature:.3f}: {flagged['train']} of {len(labels):,} training digits flagged "
          f"(out-of-fold accuracy {train_scores['accuracy']:.4f}), {flagged['test']} of {len(test['labels']):,} test digits "
          f"(the fold models' average: accuracy {test_scores['accuracy']:.4f}); review queues of "
          f"{len(queues['train'].table)} training and {len(queues['test'].table)} test digits")


if __name__ == "__main__":
    run_stage(main)
