"""Reading the arrays the preprocess stage hands on (data/prepared/*.npz), checked to fit together."""

from pathlib import Path

import numpy as np

from mnist_dvc.errors import UserError
from mnist_dvc.io.stage_outputs import read_npz

TEST_ARRAYS = ("images", "labels", "original", "index")


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 28, 28), labels (N,)) of train.npz or val.npz."""
    arrays = read_npz(path, ("images", "labels"), "preprocess")
    return arrays["images"], arrays["labels"]


def load_index(path: Path, n: int) -> np.ndarray:
    """int64 (n,): the place in the official MNIST file of each of the n digits of train.npz or val.npz
    (a distorted copy's is its source's), checked to be one per digit."""
    index = read_npz(path, ("index",), "preprocess")["index"]
    if index.shape != (n,) or index.dtype != np.int64:
        raise UserError(f"{path}: `index` is {index.dtype} {index.shape}, expected int64 ({n},); rerun the preprocess stage (dvc repro)")
    return index


def load_test_set(path: Path) -> dict[str, np.ndarray]:
    """test.npz: the model's `images`, their `labels`, the raw `original` digits and their test-set
    `index`, checked to be equally long and of the right types."""
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
