"""End to end: a person's verdicts on labels (labels/review.csv) go through the real pipeline, with
real DVC in a temporary git repository on a small slice of MNIST. `dvc status` names the preprocess
stage once a verdict is added, `dvc repro` trains on the reviewed labels and scores the test set
against them too, `dvc metrics diff` shows what the review changed, and `dvc exp run -S
preprocess.review=false` trains without the verdicts, for comparison. (Each stage's handling of
verdicts in detail: tests/stages/test_preprocess.py and test_evaluate.py; bad verdict files:
tests/e2e/test_faults.py.)"""

import json
import re
import subprocess

import numpy as np
import pytest

from mnist_dvc.config import paths
from mnist_dvc.io.verdicts import record

pytestmark = pytest.mark.e2e

SLICE = {
    "preprocess.train_subset": 2000, "preprocess.test_subset": 500, "preprocess.val_size": 200,
    "train.width": 8, "train.batch_size": 16, "train.schedule": "constant", "train.learning_rate": 0.01, "train.epochs": 2,
    "evaluate.examples": 4, "ambiguous.top_n": 5, "review.top.test": 20,
}
TIME = "2026-12-06T10:00:00Z"


def run(root, env, *command: str, stdout_only: bool = False) -> str:
    """Runs a command in the project; its stdout and stderr together, or its stdout alone (JSON)."""
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"`{' '.join(command)}` exited with {result.returncode}:\n{result.stdout}{result.stderr}"
    return result.stdout if stdout_only else result.stdout + result.stderr


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def load(path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return dict(data)


def test_verdicts_rerun_preprocess_change_the_training_set_and_the_reviewed_accuracy(make_project, edit_params, stage_env, tmp_path):
    root = make_project(tmp_path / "project", git=True)
    edit_params(root, SLICE)
    run(root, stage_env, "dvc", "repro")
    run(root, stage_env, "git", "add", "-A")
    run(root, stage_env, "git", "commit", "-q", "-m", "first run, no verdicts")
    before = {name: load(root / path) for name, path in (("train", paths.TRAIN_NPZ), ("val", paths.VAL_NPZ), ("test", paths.TEST_NPZ))}
    metrics = json.loads((root / paths.METRICS_JSON).read_text())
    assert (metrics["reviewed_accuracy"], metrics["reviewed_digits"], metrics["test_verdicts"]) == (metrics["accuracy"], 500, 0)
    queue = (root / paths.REVIEW_QUEUE_TEST / "queue.csv").read_text().splitlines()
    assert len(queue) == 1 + SLICE["review.top.test"]

    # A review session: a training digit corrected, another judged ambiguous, a test digit the model
    # reads confidently as its official label judged to be another digit.
    train = before["train"]
    corrected, unreadable = int(train["index"][3]), int(train["index"][4])
    given = {int(i): int(label) for i, label in zip(train["index"], train["labels"])}
    probs = load(root / paths.PROBS_NPZ)
    test_labels = before["test"]["labels"]
    sure = np.flatnonzero(probs["probs"].argmax(axis=1) == test_labels)
    test_digit = int(sure[np.argmax(probs["probs"][sure].max(axis=1))])
    record(root / paths.REVIEW_CSV, "train", corrected, given[corrected], "wrong", (given[corrected] + 1) % 10, TIME)
    record(root / paths.REVIEW_CSV, "train", unreadable, given[unreadable], "ambiguous", None, TIME)
    record(root / paths.REVIEW_CSV, "test", test_digit, int(test_labels[test_digit]), "wrong", (int(test_labels[test_digit]) + 1) % 10, TIME)

    status = json.loads(run(root, stage_env, "dvc", "status", "--json", stdout_only=True))
    assert {"changed deps": {str(paths.REVIEW_CSV): "modified"}} in status["preprocess"]
    # Of the main pipeline's stages only it reads the file; the rest follow from its outputs. (The
    # other pipelines, never run here, are listed as never run.)
    assert {stage for stage in status if "/" not in stage} == {"preprocess"}

    output = run(root, stage_env, "dvc", "repro")
    assert ran_stages(output)[:4] == ["preprocess", "train", "evaluate", "ambiguous"]
    assert "2 training verdicts applied (1 labels corrected, 1 digits left out); 1 test verdicts" in output
    after = load(root / paths.TRAIN_NPZ)
    assert len(after["labels"]) == len(train["labels"]) - 1 and unreadable not in after["index"]
    assert after["labels"][after["index"] == corrected].tolist() == [(given[corrected] + 1) % 10]
    np.testing.assert_array_equal(load(root / paths.TEST_NPZ)["labels"], test_labels)  # the test set keeps its official labels

    metrics = json.loads((root / paths.METRICS_JSON).read_text())
    predicted = load(root / paths.PROBS_NPZ)["probs"].argmax(axis=1)
    reviewed = test_labels.astype(np.int64)
    reviewed[test_digit] = (reviewed[test_digit] + 1) % 10
    assert metrics["test_verdicts"] == 1 and metrics["reviewed_digits"] == 500
    assert metrics["accuracy"] == round(float((predicted == test_labels).mean()), 6)
    assert metrics["reviewed_accuracy"] == round(float((predicted == reviewed).mean()), 6)
    if predicted[test_digit] == test_labels[test_digit]:  # as good as certain: it was the model's surest right answer
        assert metrics["reviewed_accuracy"] == round(metrics["accuracy"] - 1 / 500, 6)
    diff = json.loads(run(root, stage_env, "dvc", "metrics", "diff", "--json", stdout_only=True))[str(paths.METRICS_JSON)]
    assert diff["test_verdicts"] == {"old": 0, "new": 1, "diff": 1}

    # The same pipeline without the verdicts, as an experiment: the training set is the official one again.
    output = run(root, stage_env, "dvc", "exp", "run", "-n", "no-review", "-S", "preprocess.review=false")
    assert "preprocess" in ran_stages(output) and "training verdicts not applied" in output
    for split in ("train", "val"):
        for key in ("labels", "index"):
            np.testing.assert_array_equal(load(root / f"data/prepared/{split}.npz")[key], before[split][key])
    assert json.loads((root / paths.METRICS_JSON).read_text())["test_verdicts"] == 1  # test verdicts are always reported
