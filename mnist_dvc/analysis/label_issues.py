"""Which digits are probably mislabelled: confident learning (Northcutt, Jiang and Chuang, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021), through cleanlab.

Confident learning estimates, from out-of-sample probabilities (each digit scored by a model that
never trained on it, see `mnist_dvc.audit.cross_validation`), how often each digit was written down as another one,
and flags as many digits per (given, true) pair as that estimate says, those the model is surest
about first (cleanlab's default "prune_by_noise_rate"). Flagged digits are then ranked by their
label quality: the probability the model gives the label ("self-confidence"), lowest first.
Equal qualities are ordered by position, so the same probabilities always give the same table.
"""

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

ISSUE_COLUMNS = ["position", "given_label", "suggested_label", "label_quality", "rank"]
QUALITY_COLUMNS = ["index", "given_label", "suggested_label", "label_quality"]


def label_quality(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every digit's label quality in [0, 1], float64 (N,): the probability of its given label, low = suspicious."""
    return get_label_quality_scores(np.asarray(labels).astype(np.int64), np.asarray(probs, dtype=np.float64), method="self_confidence")


def rank_label_issues(probs: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per digit flagged as a likely label issue, most likely wrong first.

    `probs` (N, 10) must be out-of-sample. Columns: position (into probs/labels), given_label,
    suggested_label (the most probable digit; usually, but not always, differs from the given one),
    label_quality (see `label_quality`) and rank (1, 2, ...). Empty when nothing is flagged.
    """
    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    # n_jobs=1: the same result as in parallel, without forking worker processes inside a stage.
    flagged = np.flatnonzero(find_label_issues(labels, probs, n_jobs=1))
    quality = label_quality(probs, labels)[flagged]
    order = np.lexsort((flagged, quality))
    positions = flagged[order]
    return pd.DataFrame({
        "position": positions,
        "given_label": labels[positions],
        "suggested_label": probs[positions].argmax(axis=1),
        "label_quality": quality[order],
        "rank": np.arange(1, len(positions) + 1),
    }, columns=ISSUE_COLUMNS)


def pair_counts(issues: pd.DataFrame) -> pd.DataFrame:
    """How many flagged digits per (given_label, suggested_label), the commonest confusion first
    (ties by given, then suggested label); columns given_label, suggested_label, count."""
    counts = issues.groupby(["given_label", "suggested_label"]).size().reset_index(name="count")
    return counts.sort_values(["count", "given_label", "suggested_label"], ascending=[False, True, True]).reset_index(drop=True)


def quality_table(probs: np.ndarray, labels: np.ndarray, index: np.ndarray) -> pd.DataFrame:
    """Every digit, flagged or not, in the order given: its `index` in the official file, given and
    suggested (most probable) label and label quality rounded to 6 decimals; columns `QUALITY_COLUMNS`."""
    return pd.DataFrame({
        "index": np.asarray(index).astype(np.int64),
        "given_label": np.asarray(labels).astype(np.int64),
        "suggested_label": np.asarray(probs).argmax(axis=1),
        "label_quality": label_quality(probs, labels).round(6),
    }, columns=QUALITY_COLUMNS)
