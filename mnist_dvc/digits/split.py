"""Holding out a validation set, and how many digits of each kind every split holds."""

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mnist_dvc import NUM_CLASSES


def split_validation(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (train, val): `val_size` held out with each digit's share as in `labels`, so
    every digit is represented and model selection never needs the test set. Raises ValueError when
    no such split exists (too few images, or too few of some digit)."""
    train, val = train_test_split(np.arange(len(labels)), test_size=val_size, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(val)


def digit_counts(**splits: np.ndarray) -> pd.DataFrame:
    """One row per digit, one column of counts per named split of labels (plus `digit` first)."""
    counts = {name: np.bincount(labels, minlength=NUM_CLASSES) for name, labels in splits.items()}
    return pd.DataFrame({"digit": np.arange(NUM_CLASSES), **counts})
