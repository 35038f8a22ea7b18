"""Stage `preprocess`: raw MNIST files in, the train/val/test arrays every later stage reads out.

It checks the raw files (`mnist_dvc.io.idx`) and a person's verdicts on their labels
(labels/review.csv, `mnist_dvc.io.verdicts`: every row of both splits against the official labels,
whatever `preprocess.review` says, so a bad verdict stops the pipeline here with the file, row and
value), takes the configured subsets, holds out a stratified validation set
(`mnist_dvc.digits.split`), applies the training verdicts if `preprocess.review` is on, prepares all
images (`mnist_dvc.digits.preparation`: deskewing, stroke normalisation towards the training digits'
median width, each if asked), appends the cached distorted copies to the training part only
(`mnist_dvc.digits.cached_distortions`), and writes data/prepared/ as a whole (every split with each
digit's `index` in the official file), plus the per-digit counts of each split for `dvc plots`.

The training verdicts apply to the validation digits too (they are digits of the training file): a
digit judged wrong gets its corrected label, one judged ambiguous is left out. They apply after the
validation split, which is drawn from the official labels, so that a verdict changes the digits it
names and nothing else: the same digits are held out with or without verdicts, and `dvc metrics diff`
or `dvc exp run -S preprocess.review=false` measure the verdicts alone, not a reshuffled split.
Besides the splits it writes:
- train_labels.npz: `index` (0..N-1) and `labels` (int64) of every training digit of the subset, as
  training uses them (after the verdicts, -1 for a digit left out), for the label audit's folds, which
  read the digits from data/raw; it changes only when these labels do, so no fold retrains otherwise;
- test_verdicts.npz: `index` and `labels` of every test digit after the test verdicts (corrected
  where judged wrong, -1 where judged unreadable) and `verdicts`, how many verdicts touched these
  digits, for the evaluate stage's reviewed accuracy. Test verdicts are reported, never trained on,
  and test.npz keeps the official labels: a new test verdict reruns evaluate, not the audit's folds.
"""

import time

import numpy as np

from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.digits.cached_distortions import augment
from mnist_dvc.digits.preparation import preparation_for, prepare
from mnist_dvc.digits.split import digit_counts, split_validation
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import atomic_dir, save_npz, write_csv, write_json
from mnist_dvc.io.idx import read_split
from mnist_dvc.io.verdicts import NO_LABEL, check_given_labels, read_verdicts, reviewed_labels


def main() -> None:
    params = load_params("preprocess")
    started = time.perf_counter()

    train_images, train_labels = read_split(paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS)
    test_images, test_labels = read_split(paths.RAW_TEST_IMAGES, paths.RAW_TEST_LABELS)
    verdicts = read_verdicts(paths.REVIEW_CSV)
    check_given_labels(verdicts, "train", train_labels, paths.REVIEW_CSV)
    check_given_labels(verdicts, "test", test_labels, paths.REVIEW_CSV)
    if params.train_subset:
        train_images, train_labels = train_images[: params.train_subset], train_labels[: params.train_subset]
    if params.test_subset:
        test_images, test_labels = test_images[: params.test_subset], test_labels[: params.test_subset]

    try:
        train_idx, val_idx = split_validation(train_labels, params.val_size, params.seed)
    except ValueError as error:
        raise UserError(f"params.yaml: preprocess.val_size = {params.val_size}: no stratified split of "
                        f"{len(train_labels)} training images: {error}") from None
    if params.review:
        reviewed, train_verdicts = reviewed_labels(train_labels, np.arange(len(train_labels)), verdicts, "train")
    else:
        reviewed, train_verdicts = train_labels.astype(np.int64), 0
    kept = reviewed != NO_LABEL
    train_idx, val_idx = train_idx[kept[train_idx]], val_idx[kept[val_idx]]
    labels = np.where(kept, reviewed, 0).astype(train_labels.dtype)  # the labels training uses, by official index
    test_reviewed, test_verdicts = reviewed_labels(test_labels, np.arange(len(test_labels)), verdicts, "test")
    preparation = preparation_for(train_images[train_idx], deskew_digits=params.deskew, normalise_strokes_to_median=params.stroke)
    model_train, model_test = prepare(train_images, preparation), prepare(test_images, preparation)
    val_images, val_labels = model_train[val_idx], labels[val_idx]
    fit_images, fit_labels = model_train[train_idx], labels[train_idx]

    strengths = params.augment.model_dump(exclude={"copies"})
    rng = np.random.default_rng(params.seed)
    aug_images, aug_labels = augment(fit_images, fit_labels, params.augment.copies, rng, **strengths)

    with atomic_dir(paths.PREPARED) as folder:
        # `index`: each digit's place in the official file (a distorted copy carries its source's), so
        # later stages can match training digits with the label audit's findings and show them as written.
        save_npz(folder / paths.TRAIN_NPZ.name, images=aug_images, labels=aug_labels,
                 index=np.tile(train_idx, params.augment.copies + 1).astype(np.int64))
        save_npz(folder / paths.VAL_NPZ.name, images=val_images, labels=val_labels, index=val_idx.astype(np.int64))
        save_npz(folder / paths.TEST_NPZ.name, images=model_test, labels=test_labels, original=test_images,
                 index=np.arange(len(test_images), dtype=np.int64))
        write_json(folder / paths.PREPARATION_JSON.name, preparation)
        save_npz(folder / paths.TRAIN_LABELS_NPZ.name, index=np.arange(len(reviewed), dtype=np.int64), labels=reviewed)
        save_npz(folder / paths.TEST_VERDICTS_NPZ.name, index=np.arange(len(test_labels), dtype=np.int64), labels=test_reviewed,
                 verdicts=np.int64(test_verdicts))
    write_csv(paths.DIGIT_COUNTS_CSV, digit_counts(train=fit_labels, val=val_labels, test=test_labels))

    print(
        f"preprocess: train {len(fit_labels)} + {len(aug_labels) - len(fit_labels)} augmented, "
        f"val {len(val_labels)}, test {len(test_labels)}, preparation {preparation}; "
        f"{time.perf_counter() - started:.1f} s"
    )
    corrected, left_out = int(((reviewed != train_labels) & kept).sum()), int((~kept).sum())
    applied = (f"{train_verdicts} training verdicts applied ({corrected} labels corrected, {left_out} digits left out)" if params.review
               else "training verdicts not applied (preprocess.review: false)")
    print(f"review ({paths.REVIEW_CSV}): {applied}; {test_verdicts} test verdicts for the reviewed test accuracy")


if __name__ == "__main__":
    run_stage(main)
