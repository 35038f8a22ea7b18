"""End to end: a `dvc exp run` stopped with Ctrl+C after an epoch resumes from that epoch when run
again, in the workspace and in a temporary folder (`--temp`, as a queued experiment runs), although
DVC resets data/checkpoints to the baseline's before each try (`mnist_dvc.training.loop.fit_resumable`).
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from flax.serialization import msgpack_restore

pytestmark = pytest.mark.e2e

# A small slice, and as little as can be done after training (a whole `dvc exp run`: an experiment
# commits every stage's outputs). An epoch after the first (which compiles) takes well under a second
# on an idle 2-core CPU, so the run has 4: the interrupt, sent as soon as epoch 1's checkpoint is on
# disk, then lands while three epochs are left, not after the last.
SLICE = {
    "preprocess.train_subset": 2000, "preprocess.test_subset": 500, "preprocess.val_size": 200,
    "train.width": 8, "train.batch_size": 16, "train.schedule": "constant", "train.learning_rate": 0.01,
    "train.epochs": 4, "evaluate.examples": 1, "ambiguous.top_n": 1, "review.top.test": 1,
}


@pytest.fixture(scope="module")
def project(make_project, stage_env, tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """A committed project with a baseline run of the slice, its environment and its unfinished-run folder."""
    root = make_project(tmp_path_factory.mktemp("resume") / "project", git=True)
    cache = tmp_path_factory.mktemp("cache")
    env = {**stage_env, "XDG_CACHE_HOME": str(cache)}
    subprocess.run(["dvc", "exp", "run", "-n", "baseline", *settings({**SLICE, "train.epochs": 1})],
                   cwd=root, env=env, check=True, capture_output=True, timeout=600)
    return root, env, cache / "mnist-dvc" / "resume"


def settings(params: dict) -> list[str]:
    return [arg for key, value in params.items() for arg in ("-S", f"{key}={value}")]


def unfinished_epoch(folder: Path) -> int | None:
    """The epoch of the one unfinished-run checkpoint in `folder`, None while there is none."""
    found = list(folder.glob("*.msgpack")) if folder.is_dir() else []
    if len(found) != 1:
        return None
    try:
        return int(msgpack_restore(found[0].read_bytes())["meta"]["epoch"])
    except Exception:  # being renamed into place this very instant
        return None


def interrupt_after_epoch_1(command: list[str], root: Path, env: dict, resume: Path, log: Path) -> None:
    """Runs `command` as a terminal would and presses Ctrl+C (SIGINT to its process group) once the
    checkpoint of epoch 1 is on disk."""
    with open(log, "w") as out:
        run = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while unfinished_epoch(resume) is None and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert unfinished_epoch(resume) == 1, log.read_text()
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(120) != 0, log.read_text()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


@pytest.mark.parametrize("where", ["workspace", "temp"])
def test_an_interrupted_experiment_resumes_after_its_last_epoch(project, where, tmp_path):
    root, env, resume = project
    seed = {"workspace": 11, "temp": 12}[where]  # a run no other test made
    command = ["dvc", "exp", "run", *(["--temp"] if where == "temp" else []), *settings({**SLICE, "train.seed": seed})]
    interrupt_after_epoch_1(command, root, env, resume, tmp_path / "interrupted.log")

    again = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert re.search(rf"resuming after epoch 1 from {re.escape(str(resume))}/\w+\.msgpack", output), output
    assert unfinished_epoch(resume) is None and not list(resume.glob("*.msgpack"))  # the finished run cleans up
    if where == "workspace":
        assert list(pd.read_csv(root / "eval/train_history.csv")["epoch"]) == [1, 2, 3, 4]
