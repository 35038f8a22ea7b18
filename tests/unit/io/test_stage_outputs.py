"""Reading the arrays one stage hands to the next: a missing or broken file names the stage that
writes it."""

import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io.stage_outputs import read_npz


def test_the_named_arrays_are_read(tmp_path):
    np.savez(tmp_path / "probs.npz", probs=np.eye(3), labels=np.arange(3), extra=np.zeros(1))
    arrays = read_npz(tmp_path / "probs.npz", ("probs", "labels"), "evaluate")
    assert sorted(arrays) == ["labels", "probs"]
    np.testing.assert_array_equal(arrays["probs"], np.eye(3))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"probs\.npz: not found; run the evaluate stage first \(dvc repro\)"),
        (b"", r"probs\.npz: unreadable .*; rerun the evaluate stage"),
        (b"not an npz at all", r"probs\.npz: unreadable .*; rerun the evaluate stage"),
        ("half", r"probs\.npz: unreadable .*; rerun the evaluate stage"),
        ("without-labels", r"probs\.npz: missing array\(s\) labels; rerun the evaluate stage"),
    ],
    ids=["missing", "empty", "not-npz", "truncated", "missing-array"],
)
def test_a_bad_file_names_the_stage_to_rerun(tmp_path, content, message):
    path = tmp_path / "probs.npz"
    if content == "half":
        np.savez(path, probs=np.eye(30), labels=np.arange(30))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif content == "without-labels":
        np.savez(path, probs=np.eye(3))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        read_npz(path, ("probs", "labels"), "evaluate")
    assert "\n" not in str(error.value)
