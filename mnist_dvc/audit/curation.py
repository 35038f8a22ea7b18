"""The second training's training set: the prepared training digits, changed by what the label audit
found (audit/dvc.yaml), as the first system this project reproduces proposed and never tried.

- **Leave out label issues**: drop every training digit the audit flags as likely mislabelled
  (data/audit/train/issues.csv), with its cached augmented copies, so the model is not taught a
  wrong answer.
- **Oversample hard digits**: the `hard_digits` correctly labelled training digits (not flagged)
  of lowest out-of-fold label quality (data/audit/train/quality.csv: the probability that a model
  which never saw the digit gave its label) come back `hard_copies` more times, each copy freshly
  distorted (`mnist_dvc.digits.cached_distortions.distort`: random affine and elastic) on top of the train
  step's own augmentation, so the model sees more of the digits it finds hard without memorising them.

Digits are matched by their `index` in the official training file, which data/prepared/train.npz
carries for every digit (and every cached copy). Its labels are those training uses, after a
person's verdicts when `preprocess.review` is on, as are the audit's tables' given labels. A table that is missing, unreadable, or made for
other training digits raises `AuditTableError` naming the file; remaking it is the caller's to say.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from mnist_dvc.digits.cached_distortions import distort

ISSUE_KEYS = ["index", "given_label"]
QUALITY_KEYS = ["index", "given_label", "label_quality"]


class AuditTableError(ValueError):
    """An audit table that cannot be used: the file (`path`) and what is wrong with it (`problem`)."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = path, problem


class OtherDigits(AuditTableError):
    """An audit table that scored other training digits than the ones given; `difference` names the
    first digit it lacks, or says that their given labels differ."""

    def __init__(self, path: Path, difference: str):
        super().__init__(path, f"made for other training digits ({difference})")
        self.difference = difference


def read_audit_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """The audit's CSV at `path` with at least `columns`; missing, unreadable or incomplete raises
    `AuditTableError`."""
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise AuditTableError(path, "not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise AuditTableError(path, f"unreadable ({str(error).splitlines()[0]})") from None
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise AuditTableError(path, f"missing column(s) {', '.join(missing)}")
    return table


def check_same_digits(index: np.ndarray, labels: np.ndarray, quality: pd.DataFrame, path: Path) -> pd.Series:
    """Every digit's label quality, by official index, after checking that the audit table read from
    `path` scored exactly these training digits (each `index` there, with the same given label):
    `OtherDigits` if not, `AuditTableError` when a digit appears twice."""
    scored = quality.set_index("index")
    if not scored.index.is_unique:
        raise AuditTableError(path, "a digit appears twice")
    known = np.isin(index, scored.index.to_numpy())
    if not known.all() or not np.array_equal(scored.loc[index, "given_label"].to_numpy(), labels):
        unscored = int(index[~known][0]) if not known.all() else None
        what = f"training digit {unscored} is not in it" if unscored is not None else "its given labels differ"
        raise OtherDigits(path, what)
    return scored["label_quality"]


def hardest(quality: pd.Series, candidates: np.ndarray, n: int) -> np.ndarray:
    """The `n` indices among `candidates` (distinct official indices) of lowest label quality,
    hardest first; equal qualities go to the lower index, so the choice never depends on the order
    of the table."""
    order = np.lexsort((candidates, quality.loc[candidates].to_numpy()))
    return candidates[order[:n]]


def curated_training_set(images: np.ndarray, labels: np.ndarray, index: np.ndarray, *, flagged: np.ndarray,
                         quality: pd.Series, exclude_label_issues: bool, hard_digits: int, hard_copies: int,
                         rng: np.random.Generator, strengths: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """(images, labels, summary) of the second training's set.

    `images`, `labels`, `index` are data/prepared/train.npz's arrays; `flagged` the official indices
    the audit flags; `quality` every digit's label quality by official index (`check_same_digits`).
    With `exclude_label_issues` every row of a flagged digit goes. The `hard_digits` hardest digits
    never flagged (see `hardest`) get `hard_copies` distorted copies each (`strengths`: keyword
    arguments of `distort`), drawn from `rng` and appended after the kept rows. Raises ValueError when
    fewer than `hard_digits` unflagged digits exist. `summary` says how many digits were left out,
    which were oversampled, and how many images the set holds.
    """
    bad = np.isin(index, flagged)
    keep = ~bad if exclude_label_issues else np.ones(len(index), dtype=bool)
    candidates = np.unique(index[~bad])
    if hard_digits > len(candidates):
        raise ValueError(f"only {len(candidates)} training digits are not flagged")
    hard = hardest(quality, candidates, hard_digits)
    digits, first_rows = np.unique(index, return_index=True)  # a digit's original comes before its cached copies
    rows = first_rows[np.searchsorted(digits, hard)]
    copies = [distort(images[rows], rng, **strengths) for _ in range(hard_copies if len(hard) else 0)]
    out_images = np.concatenate([images[keep], *copies])
    out_labels = np.concatenate([labels[keep], *[labels[rows]] * len(copies)])
    summary = {
        "left_out_digits": int(len(np.unique(index[bad]))) if exclude_label_issues else 0,
        "left_out_images": int(bad.sum()) if exclude_label_issues else 0,
        "oversampled_digits": len(hard),
        "added_images": len(hard) * len(copies),
        "training_images": len(out_labels),
    }
    return out_images, out_labels.astype(labels.dtype), summary
