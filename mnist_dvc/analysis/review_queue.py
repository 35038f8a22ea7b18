"""The review queue: the digits whose labels most deserve a person's look, in the order to look at
them, written as one folder that `mnist-dvc review` reads.

The order comes from calibrated out-of-sample probabilities: the digits confident learning flags as
probably mislabelled come first (`label_issues.rank_label_issues`, lowest label quality first, so the
flagged part of a queue is the audit's issues.csv in its order), then every other digit by label
quality (the probability of its given label, `label_issues.label_quality`), lowest first; equal
qualities go to the lower position, so the same probabilities always give the same queue. The
unflagged digits after the flagged ones are those the model doubts most, where an error confident
learning missed would hide.

A queue folder (`write_queue`; its names are in `mnist_dvc.io.queue_format`) holds:
- queue.csv: one row per digit, first in line first, columns `QUEUE_COLUMNS`: `rank` (1 = first),
  `split`, `index` (the digit's place in the official file), `given_label`, `suggested_label` (the
  most probable digit), `label_quality`, `flagged` (True/False), `margin` and `entropy` (`answers`),
  `p0`..`p9` (the calibrated probabilities), then `digit` and `explained`: the paths of its pictures
  relative to the folder (`explained` empty where there is none: a scikit-learn model has no hidden
  layer and no gradient to explain with). Scores are rounded to 6 decimals: equal results, equal bytes;
- digits/<index>.png: each digit as written (`pictures.save_digit_png`);
- explained/<index>.png: each digit's explained row, its saliency and nearest training digits as the
  galleries draw them, one picture per digit; the stage draws them in its one
  `explain.save_explained_galleries` call, through the galleries `explained_galleries` makes;
- gallery.png: every digit of the queue on one captioned page, flagged ones in red.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mnist_dvc.analysis.answers import entropy, margin
from mnist_dvc.analysis.explain import Gallery
from mnist_dvc.analysis.label_issues import label_quality, rank_label_issues
from mnist_dvc.analysis.pictures import save_digit_png, save_gallery
from mnist_dvc.io.atomic import write_csv
from mnist_dvc.io.queue_format import DIGITS, EXPLAINED, GALLERY, PROB_COLUMNS, QUEUE_COLUMNS, QUEUE_CSV


@dataclass(frozen=True)
class ReviewQueue:
    """The first digits of a queue of `split`: their positions into the arrays it was ranked from, and
    its table (`QUEUE_COLUMNS`, one row per position, in order)."""

    split: str
    positions: np.ndarray
    table: pd.DataFrame


def flagged_positions(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The positions confident learning flags (`rank_label_issues`); none where fewer than two
    different labels leave nothing to compare."""
    if len(np.unique(labels)) < 2:
        return np.zeros(0, dtype=np.int64)
    return rank_label_issues(probs, labels)["position"].to_numpy(dtype=np.int64)


def queue_order(probs: np.ndarray, labels: np.ndarray, flagged: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """Positions of every candidate digit (all, or where the boolean `candidates` is True), first in
    line first: the `flagged` positions, then the rest, each part by label quality, lowest first, ties
    by position."""
    labels = np.asarray(labels).astype(np.int64)
    quality = label_quality(probs, labels)
    is_flagged = np.isin(np.arange(len(labels)), flagged)
    positions = np.arange(len(labels)) if candidates is None else np.flatnonzero(candidates)
    return positions[np.lexsort((positions, quality[positions], ~is_flagged[positions]))].astype(np.int64)


def review_queue(split: str, probs: np.ndarray, labels: np.ndarray, index: np.ndarray, top: int, *,
                 flagged: np.ndarray | None = None, candidates: np.ndarray | None = None) -> ReviewQueue:
    """The first `top` digits of `split`'s queue (fewer where fewer are candidates).

    `probs` (N, 10) calibrated and out-of-sample, `labels` the given labels, `index` each digit's
    place in the official file; `flagged` the positions confident learning flags when the caller
    has them already (else `flagged_positions`, computed on all N digits: its per-class estimates
    need them all, whichever are `candidates`).
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(np.int64)
    flagged = flagged_positions(probs, labels) if flagged is None else np.asarray(flagged, dtype=np.int64)
    positions = queue_order(probs, labels, flagged, candidates)[:top]
    chosen, index = probs[positions], np.asarray(index)[positions].astype(np.int64)
    table = pd.DataFrame({
        "rank": np.arange(1, len(positions) + 1),
        "split": split,
        "index": index,
        "given_label": labels[positions],
        "suggested_label": chosen.argmax(axis=1),
        "label_quality": label_quality(chosen, labels[positions]).round(6) if len(positions) else np.zeros(0),
        "flagged": np.isin(positions, flagged),
        "margin": margin(chosen).round(6),
        "entropy": entropy(chosen).round(6),
        **{column: chosen[:, digit].round(6) for digit, column in enumerate(PROB_COLUMNS)},
        "digit": [f"{DIGITS}/{i}.png" for i in index],
        "explained": [f"{EXPLAINED}/{i}.png" for i in index],
    }, columns=QUEUE_COLUMNS)
    return ReviewQueue(split, positions, table)


def queue_caption(row) -> str:
    """Three short lines under a queued digit: its rank and index, given and suggested label, label quality."""
    return f"{row['rank']}. #{row['index']}\ngiven {row['given_label']} \u2192 {row['suggested_label']}\nquality {row['label_quality']:.3f}"


def title(queue: ReviewQueue) -> str:
    return (f"Review queue of {queue.split} digits, the first {len(queue.table)}: flagged by confident learning first (red, "
            f"{int(queue.table['flagged'].sum())}), then lowest label quality; given label \u2192 suggested")


def explained_galleries(queue: ReviewQueue, folder: Path, at: np.ndarray) -> list[Gallery]:
    """One explained gallery of one row per queued digit, at `folder`/explained/<index>.png; `at` is
    each digit's position among the digits the stage explains."""
    return [Gallery(np.array([place]), [queue_caption(row)], folder / row["explained"],
                    f"{row['split']} digit #{row['index']}, rank {row['rank']} of the review queue")
            for place, (_, row) in zip(np.asarray(at), queue.table.iterrows())]


def write_queue(folder: Path, queue: ReviewQueue, written: np.ndarray, explained: bool) -> None:
    """queue.csv, digits/<index>.png (from `written`, every digit as written, by position) and
    gallery.png in `folder`; `explained` says whether explained/<index>.png were drawn (else the
    table's `explained` column is left empty)."""
    table = queue.table if explained else queue.table.assign(explained="")
    digits = [written[position] for position in queue.positions]
    for digit, row in zip(digits, table.itertuples()):
        save_digit_png(digit, folder / row.digit)
    save_gallery(digits, [queue_caption(row) for _, row in table.iterrows()], folder / GALLERY, title(queue),
                 wrong=list(table["flagged"]))
    write_csv(folder / QUEUE_CSV, table)
