"""Real review queue folders for the tests of `mnist-dvc review`, without training a network, and a
real server to run its page on.

Shared by tests/unit/app/test_queue_folder.py, tests/app/test_review.py and
tests/app/test_review_browser.py. A queue is made the way the stages make one, by
`mnist_dvc.analysis.review_queue` (queue.csv, digits/, gallery.png), from real MNIST digits and
real out-of-sample probabilities: those of a k-nearest-neighbour vote among 10,000 training digits
the queued ones are not part of. Its explanation pictures are drawn with `pictures.save_explained_gallery`,
as the stages draw theirs: the digit, a map of where it differs from the average digit of its given
label, and its five nearest training digits.
"""

from pathlib import Path

import numpy as np

from mnist_dvc.analysis.pictures import ExplainedRow, NeighbourGroup, save_explained_gallery
from mnist_dvc.analysis.review_queue import queue_caption, review_queue, write_queue

CANDIDATES = 1000  # digits of the split the queue is ranked from
NEIGHBOURS = 10  # voters per digit
REFERENCE = slice(50_000, 60_000)  # the training digits that vote: never queued, since a queue takes its digits from the start


def knn_probs(digits: np.ndarray, bank: np.ndarray, bank_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities float (N, 10) from the labels of each digit's `NEIGHBOURS` nearest `bank` digits
    by cosine similarity (smoothed, so no digit is impossible), and their places in `bank`, nearest first."""
    a, b = (np.asarray(x.reshape(len(x), -1), dtype=np.float32) for x in (digits, bank))
    similarity = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    nearest = np.argsort(-similarity, axis=1)[:, :NEIGHBOURS]
    votes = np.stack([np.bincount(row, minlength=10) for row in bank_labels[nearest]])
    return (votes + 0.05) / (NEIGHBOURS + 0.5), nearest


def write_queue_folder(folder: Path, split: str, top: int, images: np.ndarray, labels: np.ndarray,
                       train_images: np.ndarray, train_labels: np.ndarray, explained: bool = True) -> Path:
    """A queue of the first `top` digits of `split` (official `images`, `labels`) in `folder`,
    ranked among its first `CANDIDATES` digits; with `explained`, an explanation picture for each."""
    bank, bank_labels = train_images[REFERENCE], np.asarray(train_labels[REFERENCE]).astype(np.int64)
    digits, given = images[:CANDIDATES], np.asarray(labels[:CANDIDATES]).astype(np.int64)
    probs, nearest = knn_probs(digits, bank, bank_labels)
    queue = review_queue(split, probs, given, np.arange(CANDIDATES), top)
    write_queue(folder, queue, digits, explained)
    if explained:
        means = np.stack([bank[bank_labels == label].mean(axis=0) for label in range(10)])
        for position, (_, row) in zip(queue.positions, queue.table.iterrows()):
            digit = digits[position]
            close = nearest[position][:5]
            save_explained_gallery([ExplainedRow(
                digit=digit, caption=queue_caption(row), wrong=bool(row["flagged"]), model_input=digit,
                saliency=digit.astype(np.float64) - means[row["given_label"]], saliency_caption="unlike its label's\naverage",
                groups=[NeighbourGroup("nearest training digits", list(bank[close]),
                                       [f"label {label}" for label in bank_labels[close]])],
            )], folder / row["explained"], f"{split} digit #{row['index']}, rank {row['rank']} of the review queue")
    return folder
