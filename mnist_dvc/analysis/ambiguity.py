"""Five answers to "which test digits is the model least sure about?", computed from its probabilities.

Each definition maps (probs (N,10), labels (N,), n) to at most `n` positions into those arrays,
most ambiguous first. They disagree on purpose: a confidently wrong digit is ambiguous to a
person but not to the model, while a small margin or a high entropy is ambiguity the model admits;
a label issue is a digit whose label, rather than the model, is probably wrong.
Equal scores are ordered by position, so the same probabilities always give the same list.
The scores are those of `answers`; new digits are judged against the ambiguous stage's lists with
`load_cutoffs` and `verdicts`.
"""

import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from mnist_dvc.analysis.answers import entropy, margin, top_two
from mnist_dvc.analysis.calibration import recorded_temperature
from mnist_dvc.errors import UserError


def _most(score: np.ndarray, n: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Positions of the `n` smallest scores among `candidates` (all by default), ties by position."""
    positions = np.arange(len(score)) if candidates is None else np.flatnonzero(candidates)
    order = np.lexsort((positions, score[positions]))
    return positions[order][:n].astype(np.int64)


def confident_wrong(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Misclassified digits, highest confidence first: where the model is sure and wrong (or the label is)."""
    prediction, confidence, _, _ = top_two(probs)
    return _most(-confidence.astype(np.float64), n, candidates=prediction != labels)


def least_confident(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits whose top probability is lowest, right or wrong."""
    _, confidence, _, _ = top_two(probs)
    return _most(confidence.astype(np.float64), n)


def smallest_margin(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits with the smallest gap between the two likeliest classes: a coin toss between two digits."""
    return _most(margin(probs), n)


def highest_entropy(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits with the most spread-out probabilities: the model has no clear favourite at all."""
    return _most(-entropy(probs), n)


def label_issues(probs: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Digits whose label is probably wrong: those confident learning flags (`label_issues.rank_label_issues`),
    lowest probability of the given label first. `probs` must be out-of-sample (the test set's are)
    and should be calibrated; with fewer than two different labels nothing can be compared and
    none is flagged."""
    # Imported here: cleanlab takes about a second to load, and only the ambiguous stage ranks label
    # issues; the predict stage, mnist-dvc and the drawing page import this module for its cutoffs.
    from mnist_dvc.analysis.label_issues import rank_label_issues

    if len(np.unique(labels)) < 2:
        return np.zeros(0, dtype=np.int64)
    return rank_label_issues(probs, labels)["position"].to_numpy(dtype=np.int64)[:n]


DEFINITIONS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "confident_wrong": confident_wrong,
    "least_confident": least_confident,
    "smallest_margin": smallest_margin,
    "highest_entropy": highest_entropy,
    "label_issues": label_issues,
}


# For one new digit: the score each definition ranks by, and whether a higher score is more ambiguous.
# A digit counts as ambiguous under a definition when its score is at least as ambiguous as that of
# the last digit the `ambiguous` stage kept for it among the test digits, i.e. it would have made
# that stage's list. confident_wrong needs a label and is judged only where one is given.
# label_issues has no such score: confident learning flags a digit by comparing it with the whole
# test set (per-class thresholds, then as many digits per label pair as it estimates are wrong), so
# no one-digit cutoff reproduces its list; it is left out here, and `cutoffs` and `verdicts` judge
# new digits by the definitions listed here only.
SCORES = {"confident_wrong": ("confidence", True), "least_confident": ("confidence", False),
          "smallest_margin": ("margin", False), "highest_entropy": ("entropy", True)}


def cutoffs(summary: dict) -> dict[str, float]:
    """Each definition's cutoff score: that of the last digit in its table of the `ambiguous`
    stage's summary.json (a definition that kept no digit has no cutoff; definitions without a
    one-digit score, not in `SCORES`, are skipped). The scores are those of probabilities
    calibrated with `calibration_temperature(summary)`: a new digit's must be calibrated the same
    way before `verdicts` compares them."""
    return {name: summary[name]["digits"][-1][SCORES[name][0]] for name in SCORES if summary.get(name, {}).get("digits")}


def calibration_temperature(summary: dict, source: str | os.PathLike) -> float:
    """The temperature that calibrated the probabilities the `ambiguous` stage ranked (summary.json's
    `temperature`, the evaluate stage's). `UserError` naming `source` (the summary's file) when it
    is missing or not a positive number: a summary written before the stage recorded it."""
    found = recorded_temperature(summary)
    if found is None:
        raise UserError(f"{source}: no calibration temperature (written by an older ambiguous stage); "
                        "rerun the ambiguous stage (dvc repro)")
    return found


def load_cutoffs(path: str | os.PathLike) -> tuple[dict[str, float], float]:
    """(`cutoffs`, `calibration_temperature`) of the `ambiguous` stage's summary.json at `path`:
    what judging a new digit as that stage would takes. `UserError` naming the file when it is
    missing, unreadable or older than the temperature."""
    from mnist_dvc.io.stage_outputs import read_json

    summary = read_json(path, "ambiguous")
    return cutoffs(summary), calibration_temperature(summary, path)


def verdicts(table: pd.DataFrame, cutoff: dict[str, float], labels: np.ndarray | None = None) -> pd.Series:
    """Per row of an `answers.predictions` table, the definitions under which that digit is ambiguous,
    joined by "+", or "" for none. Only definitions in `SCORES` are judged; others in `cutoff` are ignored."""
    flags = {}
    for name, limit in cutoff.items():
        if name not in SCORES:
            continue
        column, higher = SCORES[name]
        flagged = table[column] >= limit if higher else table[column] <= limit
        if name == "confident_wrong":
            if labels is None:
                continue
            flagged &= table["prediction"].to_numpy() != np.asarray(labels)
        flags[name] = flagged
    if not flags:
        return pd.Series("", index=table.index)
    return pd.DataFrame(flags, index=table.index).apply(lambda row: "+".join(row.index[row.to_numpy(bool)]), axis=1)
