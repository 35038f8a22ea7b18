"""The preprocess stage: raw MNIST files in, the train/val/test arrays every later stage reads out.

It checks the raw files, takes the configured subsets, holds out a stratified validation set (so
every digit is represented as in the training set, and model selection never sees the test set),
optionally deskews all images, appends the cached augmented copies to the training part only, and
writes data/prepared/ as a whole, plus the per-digit counts for `dvc plots`.
"""

import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from stages.atomic import atomic_dir, save_npz, write_text
from stages.augment import augment
from stages.deskew import deskew
from stages.errors import UserError, run_stage
from stages.idx import NUM_CLASSES, load_split
from stages.params import load_params

RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")
DIGIT_COUNTS = Path("eval/digit_counts.csv")
TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def split_validation(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (train, val): `val_size` held out with each digit's share as in `labels`."""
    try:
        train, val = train_test_split(
            np.arange(len(labels)), test_size=val_size, stratify=labels, random_state=seed
        )
    except ValueError as error:  # too few images, or too few of some digit, for this split
        raise UserError(
            f"preprocess.val_size = {val_size}: no stratified split of {len(labels)} training "
            f"images: {error}"
        ) from None
    return np.sort(train), np.sort(val)


def digit_counts_csv(train: np.ndarray, val: np.ndarray, test: np.ndarray) -> str:
    """CSV text `digit,train,val,test`: how many images of each digit every split holds."""
    counts = [np.bincount(labels, minlength=NUM_CLASSES) for labels in (train, val, test)]
    rows = ["digit,train,val,test"]
    rows += [f"{digit},{counts[0][digit]},{counts[1][digit]},{counts[2][digit]}" for digit in range(NUM_CLASSES)]
    return "\n".join(rows) + "\n"


def main() -> None:
    params = load_params("preprocess")
    started = time.perf_counter()

    train_images, train_labels = load_split(*(RAW_DIR / name for name in TRAIN_FILES))
    test_images, test_labels = load_split(*(RAW_DIR / name for name in TEST_FILES))
    if params.train_subset:
        train_images, train_labels = train_images[: params.train_subset], train_labels[: params.train_subset]
    if params.test_subset:
        test_images, test_labels = test_images[: params.test_subset], test_labels[: params.test_subset]

    train_idx, val_idx = split_validation(train_labels, params.val_size, params.seed)
    model_train = deskew(train_images) if params.deskew else train_images
    model_test = deskew(test_images) if params.deskew else test_images
    val_images, val_labels = model_train[val_idx], train_labels[val_idx]
    fit_images, fit_labels = model_train[train_idx], train_labels[train_idx]

    strengths = params.augment.model_dump(exclude={"copies"})
    rng = np.random.default_rng(params.seed)
    aug_images, aug_labels = augment(fit_images, fit_labels, params.augment.copies, rng, **strengths)

    with atomic_dir(PREPARED_DIR) as folder:
        save_npz(folder / "train.npz", images=aug_images, labels=aug_labels)
        save_npz(folder / "val.npz", images=val_images, labels=val_labels)
        save_npz(
            folder / "test.npz",
            images=model_test,
            labels=test_labels,
            original=test_images,
            index=np.arange(len(test_images), dtype=np.int64),
        )
    write_text(DIGIT_COUNTS, digit_counts_csv(fit_labels, val_labels, test_labels))

    print(
        f"preprocess: train {len(fit_labels)} + {len(aug_labels) - len(fit_labels)} augmented, "
        f"val {len(val_labels)}, test {len(test_labels)}, deskew {'on' if params.deskew else 'off'}; "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    run_stage(main)
