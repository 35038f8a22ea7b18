"""Stage `preprocess`: raw MNIST files in, the train/val/test arrays every later stage reads out.

It checks the raw files (`mnist_dvc.io.idx`), takes the configured subsets, holds out a stratified
validation set (`mnist_dvc.digits.split`), prepares all images (`mnist_dvc.digits.preparation`: deskewing,
stroke normalisation towards the training digits' median width, each if asked), appends
the cached distorted copies to the training part only (`mnist_dvc.digits.cached_distortions`), and writes
data/prepared/ as a whole (every split with each digit's `index` in the official file), plus the per-digit counts of each split for `dvc plots`.
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


def main() -> None:
    params = load_params("preprocess")
    started = time.perf_counter()

    train_images, train_labels = read_split(paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS)
    test_images, test_labels = read_split(paths.RAW_TEST_IMAGES, paths.RAW_TEST_LABELS)
    if params.train_subset:
        train_images, train_labels = train_images[: params.train_subset], train_labels[: params.train_subset]
    if params.test_subset:
        test_images, test_labels = test_images[: params.test_subset], test_labels[: params.test_subset]

    try:
        train_idx, val_idx = split_validation(train_labels, params.val_size, params.seed)
    except ValueError as error:
        raise UserError(f"params.yaml: preprocess.val_size = {params.val_size}: no stratified split of "
                        f"{len(train_labels)} training images: {error}") from None
    preparation = preparation_for(train_images[train_idx], deskew_digits=params.deskew, normalise_strokes_to_median=params.stroke)
    model_train, model_test = prepare(train_images, preparation), prepare(test_images, preparation)
    val_images, val_labels = model_train[val_idx], train_labels[val_idx]
    fit_images, fit_labels = model_train[train_idx], train_labels[train_idx]

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
    write_csv(paths.DIGIT_COUNTS_CSV, digit_counts(train=fit_labels, val=val_labels, test=test_labels))

    print(
        f"preprocess: train {len(fit_labels)} + {len(aug_labels) - len(fit_labels)} augmented, "
        f"val {len(val_labels)}, test {len(test_labels)}, preparation {preparation}; "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    run_stage(main)
