"""The audit's findings as tables and captions: confident learning's ranking (`mnist_dvc.analysis.label_issues`)
with each digit named by its place in the official MNIST file."""

import numpy as np
import pandas as pd

AUDIT_COLUMNS = ["split", "index", "given_label", "suggested_label", "label_quality", "rank"]


def issue_table(split: str, issues: pd.DataFrame, index: np.ndarray) -> pd.DataFrame:
    """`mnist_dvc.analysis.label_issues.rank_label_issues`' table with its positions turned into `index`
    (each digit's place in the official MNIST file) and the split named, columns `AUDIT_COLUMNS`;
    label qualities rounded to 6 decimals, so equal probabilities give equal bytes."""
    return pd.DataFrame({
        "split": split,
        "index": np.asarray(index)[issues["position"].to_numpy()].astype(np.int64),
        "given_label": issues["given_label"].to_numpy(),
        "suggested_label": issues["suggested_label"].to_numpy(),
        "label_quality": issues["label_quality"].to_numpy().round(6),
        "rank": issues["rank"].to_numpy(),
    }, columns=AUDIT_COLUMNS)


def issue_caption(row) -> str:
    """Three short lines under a flagged digit: its index, given and suggested label, label quality."""
    return f"#{row['index']}\ngiven {row['given_label']} \u2192 {row['suggested_label']}\nquality {row['label_quality']:.3f}"
