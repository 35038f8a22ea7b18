"""End to end: sharing a project through remotes, with real `git` and `dvc` commands.

Project A (a copy of the working tree, committed) runs the pipeline on a small slice of MNIST and
pushes its outputs to a DVC remote in a local folder. A fresh `git clone` of it (B) gets them with
`dvc pull` alone, byte for byte, and has nothing left to reproduce, without the MNIST files. Then an
experiment run in A travels through a bare git repository (`dvc exp push` / `dvc exp pull`, its
outputs through the same DVC remote) to a third clone (C), which lists it with A's metrics and
applies it to get A's results.

B and C pull and check out `dvc.yaml`, the main pipeline: a plain `dvc pull` or `dvc checkout` (and
the checkout that ends `dvc exp apply`) also asks for the outputs of the other pipelines,
committee/ (its committed dvc.lock) and audit/ (never run), which this small project never made,
and ends with an error naming them.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

TIMEOUT = 300  # seconds, for any one command
# A small slice and a narrow network (as in test_pipeline.py), one epoch: the whole file runs in ~2 minutes.
SMALL = {
    "preprocess.train_subset": 2000, "preprocess.test_subset": 500, "preprocess.val_size": 200,
    "train.width": 8, "train.batch_size": 16, "train.schedule": "constant", "train.learning_rate": 0.01,
    "train.epochs": 1, "train.seed": 0, "evaluate.examples": 4, "ambiguous.top_n": 5,
}
EXPERIMENT = "small-exp"
BRANCH = "main"


def run(folder: Path, env: dict, *command: str, check: bool = True):
    """Runs a command in `folder`, bounded; fails the test with its output unless it exits with 0
    (or, with check=False, returns its exit status and output)."""
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    output = result.stdout + result.stderr
    if not check:
        return result.returncode, output
    assert result.returncode == 0, f"`{' '.join(command)}` in {folder} exited with {result.returncode}:\n{output}"
    return output


def checkout_failures(output: str) -> list[str]:
    """The paths under DVC's "Checkout failed for following targets:", one a line, if any."""
    found = re.search(r"Checkout failed for following targets:\n(.*?)\n(?:Is your cache up to date\?|$)", output, re.S)
    return found[1].split() if found else []


def outputs(folder: Path) -> list[str]:
    """Every output of the main pipeline that dvc.lock records: what a clone must get, from the DVC
    remote (data/) or from git (eval/)."""
    lock = yaml.safe_load((folder / "dvc.lock").read_text())
    return sorted(out["path"] for stage in lock["stages"].values() for out in stage.get("outs", []))


def files(folder: Path, paths: list[str]) -> dict[str, bytes]:
    """Every file of these outputs (files or folders), by path relative to `folder`, with its bytes."""
    found = {}
    for name in paths:
        top = folder / name
        for path in sorted(top.rglob("*")) if top.is_dir() else [top] if top.exists() else []:
            if path.is_file():
                found[path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def experiment_metrics(folder: Path, env: dict) -> dict[str, dict]:
    """`dvc exp show`'s experiments, by name: their metrics files' contents."""
    found = {}
    for row in json.loads(run(folder, env, "dvc", "exp", "show", "--json")):
        for experiment in row.get("experiments") or []:
            for rev in experiment["revs"]:
                metrics = rev["data"].get("metrics") or {}
                found[rev["name"]] = {path: value.get("data", {}) for path, value in metrics.items()}
    return found


def clone(source: str, folder: Path, env: dict) -> Path:
    run(folder.parent, env, "git", "clone", "-q", "--branch", BRANCH, source, folder.name)
    for setting in (["user.name", "pytest"], ["user.email", "pytest@localhost"]):
        run(folder, env, "git", "config", *setting)
    return folder


@pytest.fixture(scope="module")
def offline_env(stage_env, tmp_path_factory) -> dict[str, str]:
    """The clones' environment: MNIST_MIRROR an empty folder, so that nothing there can come from it."""
    return {**stage_env, "MNIST_MIRROR": str(tmp_path_factory.mktemp("no-mnist"))}


@pytest.fixture(scope="module")
def project_a(make_project, stage_env, edit_params, tmp_path_factory) -> dict:
    """Project A: the small slice set and committed, a local-folder DVC remote as the default
    (committed), the pipeline reproduced, dvc.lock and eval/ committed, the outputs pushed. Returns
    its folder, the remote's, and a snapshot of its shared files just after the push."""
    top = tmp_path_factory.mktemp("remotes")
    root = make_project(top / "A", git=True)
    remote = top / "dvc-remote"
    run(root, stage_env, "git", "branch", "-M", BRANCH)
    edit_params(root, SMALL)
    run(root, stage_env, "dvc", "remote", "add", "-d", "local", str(remote))
    run(root, stage_env, "git", "add", "-A")
    run(root, stage_env, "git", "commit", "-q", "-m", "small slice, local DVC remote")
    output = run(root, stage_env, "dvc", "repro")
    assert "Running stage 'train'" in output
    run(root, stage_env, "git", "add", "-A")
    run(root, stage_env, "git", "commit", "-q", "-m", "reproduced")
    run(root, stage_env, "dvc", "push")
    assert any(remote.rglob("*")), "dvc push left the remote empty"
    shared = outputs(root)
    return {"root": root, "remote": remote, "outputs": shared, "files": files(root, shared)}


def test_a_fresh_clone_pulls_every_output_and_has_nothing_to_reproduce(project_a, offline_env, tmp_path):
    b = clone(str(project_a["root"]), tmp_path / "B", offline_env)
    assert not (b / "data").exists()  # git brings no data
    assert (b / ".dvc/config").read_text() == (project_a["root"] / ".dvc/config").read_text()

    run(b, offline_env, "dvc", "pull", "dvc.yaml")
    pulled, original = files(b, project_a["outputs"]), project_a["files"]
    for name in ("data/prepared/train.npz", "data/prepared/val.npz", "data/prepared/test.npz",
                 "data/model/model.msgpack", "data/eval/probs.npz", "data/predictions/predictions.csv",
                 "eval/metrics.json", "eval/train_history.csv"):
        assert name in original, name
    # an output under data/ with `cache: false` reaches the clone neither through git nor the remote
    assert sorted(pulled) == sorted(original), f"missing in the clone: {sorted(set(original) - set(pulled))}"
    different = [name for name in original if pulled[name] != original[name]]
    assert different == [], different

    status = run(b, offline_env, "dvc", "status", "dvc.yaml")
    assert status.strip() == "Data and pipelines are up to date.", status
    repro = run(b, offline_env, "dvc", "repro")
    assert "Running stage" not in repro, repro
    stages = re.findall(r"Stage '(\w+)' didn't change, skipping", repro)
    assert stages == ["download", "preprocess", "train", "evaluate", "ambiguous", "predict"], repro
    assert "Data and pipelines are up to date." in repro
    assert files(b, project_a["outputs"]) == original  # and nothing was rewritten


def test_an_experiment_travels_through_git_and_dvc_remotes(project_a, stage_env, offline_env, tmp_path):
    a = project_a["root"]
    origin = tmp_path / "origin.git"
    run(tmp_path, stage_env, "git", "init", "-q", "--bare", str(origin))
    run(a, stage_env, "git", "remote", "add", "origin", str(origin))
    run(a, stage_env, "git", "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")

    output = run(a, stage_env, "dvc", "exp", "run", "-n", EXPERIMENT, "-S", "train.epochs=2")
    assert "Stage 'preprocess' didn't change, skipping" in output and "Running stage 'train'" in output
    metrics_a = experiment_metrics(a, stage_env)[EXPERIMENT]
    results_a = files(a, project_a["outputs"])
    assert metrics_a["eval/metrics.json"] == json.loads(results_a["eval/metrics.json"])
    run(a, stage_env, "dvc", "exp", "push", "origin", EXPERIMENT)  # the git refs, and the outputs to the DVC remote
    refs = run(tmp_path, stage_env, "git", "--git-dir", str(origin), "for-each-ref", "refs/exps")
    assert refs.strip(), "dvc exp push left no experiment ref in origin"

    c = clone(str(origin), tmp_path / "C", offline_env)
    assert EXPERIMENT not in experiment_metrics(c, offline_env)
    run(c, offline_env, "dvc", "exp", "pull", "origin", EXPERIMENT)
    assert experiment_metrics(c, offline_env)[EXPERIMENT] == metrics_a

    # `dvc exp apply` checks out every pipeline's outputs: those of the pipelines this project never
    # ran (audit/, committee/) are nowhere, so it may end with an error naming them, and only them,
    # once it has applied the experiment.
    status, output = run(c, offline_env, "dvc", "exp", "apply", EXPERIMENT, check=False)
    if status != 0:
        failed = checkout_failures(output)
        assert failed, output
        main = project_a["outputs"]
        assert not [path for path in failed if any(path == out or path.startswith(f"{out}/") for out in main)], output
    run(c, offline_env, "dvc", "checkout", "dvc.yaml")  # the main pipeline's outputs, from what exp pull fetched
    assert run(c, offline_env, "dvc", "status", "dvc.yaml").strip() == "Data and pipelines are up to date."
    assert yaml.safe_load((c / "params.yaml").read_text())["train"]["epochs"] == 2
    results_c = files(c, project_a["outputs"])
    assert results_c["eval/metrics.json"] == results_a["eval/metrics.json"]
    different = [name for name in results_a if results_c.get(name) != results_a[name]]
    assert different == [], different
