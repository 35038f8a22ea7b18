"""The audit's findings as a table of digits named by their place in the official file."""

import numpy as np
import pandas as pd

from mnist_dvc.analysis.label_issues import rank_label_issues
from mnist_dvc.audit.issue_tables import AUDIT_COLUMNS, issue_table


def test_the_issue_table_names_digits_by_their_index_in_the_official_file():
    probs = np.full((4, 10), 0.01, dtype=np.float32)
    probs[np.arange(4), [7, 7, 2, 2]] = 0.91
    issues = pd.DataFrame({"position": [2, 0], "given_label": [7, 2], "suggested_label": [2, 7],
                           "label_quality": [0.0100001, 0.0100004], "rank": [1, 2]})
    table = issue_table("test", issues, np.array([100, 101, 102, 103]))
    assert list(table.columns) == AUDIT_COLUMNS
    assert table["index"].tolist() == [102, 100] and table["split"].tolist() == ["test", "test"]
    assert table["label_quality"].tolist() == [0.01, 0.01]
    assert list(issue_table("train", rank_label_issues(probs, np.array([7, 7, 2, 2])), np.arange(4)).columns) == AUDIT_COLUMNS
