"""End to end: the model registry on real git tags (GTO), real DVC and `mnist-dvc promote`.

A copy of the working tree, committed, takes the small trained model of `trained_project` as its
pipeline's outputs (`dvc commit` of train, evaluate and ambiguous, so dvc.lock and DVC's cache hold
them). Candidates are then committed one after another: the first promotion meets `gate.min_accuracy`
only once it is lowered for this small model; a second model (trained again with another seed)
committed with scores a little better passes; scores a little worse, and better ones with a digit
that regresses, are refused with exit status 1 and no tag. The candidates' eval/metrics.json and
eval/per_digit.csv are edited from the first model's real ones, since only the committed scores
decide. Then `mnist-dvc predict --stage prod` reads the model of prod's commit, not the workspace's,
and a clone gets a version with `dvc artifacts get` through a folder DVC remote.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mnist_dvc.release.gate import figure

pytestmark = pytest.mark.e2e

TIMEOUT = 300  # seconds, for any one command
CLI = [sys.executable, "-c", "from mnist_dvc.app.cli import main; main()"]


def run(folder: Path, env: dict, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a command in `folder`, bounded; fails the test with its output unless it exits with 0 (or check=False)."""
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert not check or done.returncode == 0, f"`{' '.join(command)}` in {folder} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def tags(root: Path, env: dict) -> set[str]:
    return set(run(root, env, "git", "tag", "--list").stdout.split())


def commit(root: Path, env: dict, message: str) -> str:
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-q", "-m", message)
    return run(root, env, "git", "rev-parse", "HEAD").stdout.strip()


def files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def write_scores(root: Path, first: dict, accuracy_change: float, f1_changes: dict[int, float] | None = None) -> None:
    """eval/metrics.json and eval/per_digit.csv as the first model's (`first`), with the accuracy and
    some digits' F1 moved by the given amounts."""
    metrics = {**first["metrics"], "accuracy": round(first["metrics"]["accuracy"] + accuracy_change, 6)}
    (root / "eval/metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    table = first["per_digit"].copy()
    for digit, change in (f1_changes or {}).items():
        table.loc[table["digit"] == digit, "f1"] = round(float(table.loc[table["digit"] == digit, "f1"].iloc[0]) + change, 6)
    table.to_csv(root / "eval/per_digit.csv", index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def story(make_project, trained_project, stage_env, edit_params, tmp_path_factory) -> dict:
    """The project and what each `mnist-dvc promote` along its history did: exit status, output, the
    commit it gated and the tags before and after."""
    env = stage_env
    top = tmp_path_factory.mktemp("registry")
    root = make_project(top / "project", git=True)
    for name in ("data", "eval"):
        shutil.copytree(trained_project / name, root / name, symlinks=True, dirs_exist_ok=True)
    shutil.copy(trained_project / "params.yaml", root / "params.yaml")
    run(root, env, "dvc", "remote", "add", "-d", "local", str(top / "dvc-remote"))
    run(root, env, "dvc", "commit", "-f", "train", "evaluate", "ambiguous")
    commits = {"first": commit(root, env, "the small trained model, its scores and ambiguity summary")}
    models = {"first": top / "models/first"}
    shutil.copytree(root / "data/model", models["first"])
    first = {"metrics": json.loads((root / "eval/metrics.json").read_text()), "per_digit": pd.read_csv(root / "eval/per_digit.csv")}
    steps = {}

    def promote(step: str) -> None:
        before = tags(root, env)
        done = run(root, env, *CLI, "promote", check=False)
        steps[step] = {"status": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "before": before,
                       "made": tags(root, env) - before, "commit": run(root, env, "git", "rev-parse", "HEAD").stdout.strip()}

    promote("floor")  # the shipped gate.min_accuracy (0.99) is above this small model's accuracy
    (root / "eval/metrics.json").write_text(json.dumps({**first["metrics"], "accuracy": 0.999}))
    promote("uncommitted")
    run(root, env, "git", "checkout", "--", "eval/metrics.json")
    edit_params(root, {"gate.min_accuracy": 0.5})
    commits["first"] = commit(root, env, "gate.min_accuracy for the small model")
    promote("first")

    edit_params(root, {"train.seed": 1, "train.epochs": 1})
    run(root, env, sys.executable, "-m", "stages.train")
    run(root, env, "dvc", "commit", "-f", "train")
    models["better"] = top / "models/better"
    shutil.copytree(root / "data/model", models["better"])
    write_scores(root, first, +0.002)
    commits["better"] = commit(root, env, "better: another model, scores 0.002 higher")
    promote("better")

    write_scores(root, first, +0.001)
    commits["worse"] = commit(root, env, "worse: 0.001 below prod")
    promote("worse")
    write_scores(root, first, +0.005, {7: -0.02})
    commits["regressing"] = commit(root, env, "regressing digit: 0.003 above prod, but digit 7's F1 0.02 below")
    promote("regressing")
    return {"root": root, "top": top, "env": env, "steps": steps, "commits": commits, "models": models, "first": first}


def test_the_first_promotion_needs_min_accuracy_and_then_tags_a_version_and_prod(story):
    floor = story["steps"]["floor"]
    accuracy = figure(story["first"]["metrics"]["accuracy"])
    assert floor["status"] == 1 and floor["made"] == set() and floor["before"] == set()
    assert floor["stderr"] == f"refused: test accuracy {accuracy} < gate.min_accuracy 0.99 (first promotion: no model at prod yet)\n"

    first = story["steps"]["first"]
    assert first["status"] == 0, first["stderr"]
    assert first["made"] == {"mnist-cnn@v0.0.1", "mnist-cnn#prod#1"}
    assert first["stdout"] == (f"passed: test accuracy {accuracy} >= gate.min_accuracy 0.5 (first promotion: no model at prod yet)\n"
                               "mnist-cnn@v0.0.1\nmnist-cnn#prod#1\n")
    root, env = story["root"], story["env"]
    for tag in first["made"]:
        assert run(root, env, "git", "rev-list", "-n", "1", tag).stdout.strip() == story["commits"]["first"]
    message = run(root, env, "git", "tag", "-l", "--format=%(contents)", "mnist-cnn#prod#1").stdout.strip()
    assert message == first["stdout"].splitlines()[0]  # the gate's line is the assignment's message


def test_a_workspace_whose_scores_differ_from_head_is_not_promoted(story):
    uncommitted = story["steps"]["uncommitted"]
    assert uncommitted["status"] == 1 and uncommitted["made"] == set()
    assert uncommitted["stderr"].startswith("error: eval/metrics.json differ(s) from HEAD's: commit the run first")
    assert len(uncommitted["stderr"].splitlines()) == 1


def test_a_better_candidate_passes_and_becomes_the_next_version_at_prod(story):
    better = story["steps"]["better"]
    accuracy = story["first"]["metrics"]["accuracy"]
    assert better["status"] == 0, better["stderr"]
    assert better["made"] == {"mnist-cnn@v0.0.2", "mnist-cnn#prod#2"}
    assert better["stdout"].startswith(f"passed: test accuracy {figure(accuracy + 0.002)} vs prod {figure(accuracy)}: "
                                       "gain 0.002 >= gate.min_gain 0.0005; no digit's F1 fell by more than gate.max_digit_drop 0.005")
    assert better["stdout"].endswith("\nmnist-cnn@v0.0.2\nmnist-cnn#prod#2\n")
    root, env = story["root"], story["env"]
    assert run(root, env, "gto", "show", "mnist-cnn#prod", "--ref").stdout.strip() == "mnist-cnn@v0.0.2"
    assert run(root, env, "git", "rev-list", "-n", "1", "mnist-cnn@v0.0.2").stdout.strip() == story["commits"]["better"]


def test_a_worse_candidate_and_one_with_a_regressing_digit_are_refused_without_a_tag(story):
    accuracy = story["first"]["metrics"]["accuracy"]
    worse, regressing = story["steps"]["worse"], story["steps"]["regressing"]
    assert worse["status"] == 1 and worse["made"] == set() and worse["stdout"] == ""
    assert worse["stderr"] == (f"refused: test accuracy {figure(accuracy + 0.001)} vs prod {figure(accuracy + 0.002)}: "
                               f"gain -0.001 < gate.min_gain 0.0005\n")
    f1 = float(story["first"]["per_digit"].set_index("digit").loc[7, "f1"])
    assert regressing["status"] == 1 and regressing["made"] == set() and regressing["stdout"] == ""
    assert regressing["stderr"] == f"refused: digit 7 F1 {figure(f1 - 0.02)} vs prod {figure(f1)}: drop 0.02 > gate.max_digit_drop 0.005\n"


def test_predict_at_stage_prod_reads_the_model_of_prods_commit(story):
    root, env, models = story["root"], story["env"], story["models"]
    shutil.rmtree(root / "data/model")
    shutil.copytree(models["first"], root / "data/model")  # the workspace's model is now another one
    at_prod = run(root, env, *CLI, "predict", "samples/digits", "--json", "--stage", "prod")
    commit = story["commits"]["better"]
    fetched = Path("data/registry") / commit
    assert at_prod.stderr == f"mnist-cnn@v0.0.2 (commit {commit[:8]}), at stage prod: {fetched / 'model'}\n"
    assert files(root / fetched / "model") == files(models["better"])
    assert (root / fetched / "summary.json").read_bytes() == (root / "data/ambiguous/summary.json").read_bytes()
    better = run(root, env, *CLI, "predict", "samples/digits", "--json", "--model", str(models["better"]))
    workspace = run(root, env, *CLI, "predict", "samples/digits", "--json")
    assert json.loads(at_prod.stdout) == json.loads(better.stdout) != json.loads(workspace.stdout)

    again = run(root, env, *CLI, "predict", "samples/digits", "--json", "--stage", "prod")  # reused, not fetched again
    assert again.stdout == at_prod.stdout and sorted(p.name for p in (root / "data/registry").iterdir()) == [commit]


def test_a_stage_nobody_holds_and_both_stage_and_model_are_one_line_errors(story):
    root, env = story["root"], story["env"]
    done = run(root, env, *CLI, "predict", "samples/digits", "--stage", "dev", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("error: no version of mnist-cnn is at stage 'dev' in . (`gto show mnist-cnn` lists them; "
                           "`mnist-dvc promote` puts one at prod)\n")
    done = run(root, env, *CLI, "serve", "--stage", "prod", "--model", "data/model", check=False)
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_a_clone_gets_a_version_and_the_stage_with_dvc_artifacts_get_through_a_folder_remote(story, tmp_path):
    root, env, models = story["root"], story["env"], story["models"]
    run(root, env, "dvc", "push", "--all-tags", "dvc.yaml:train")  # every tagged commit's model
    clone = tmp_path / "clone"
    run(tmp_path, env, "git", "clone", "-q", str(root), clone.name)
    assert {"mnist-cnn@v0.0.1", "mnist-cnn#prod#2"} <= tags(clone, env) and not (clone / "data").exists()
    # A git URL, not a path: DVC clones the repository and fetches from its DVC remote, never from its cache.
    url = root.as_uri()
    run(clone, env, "dvc", "artifacts", "get", url, "mnist-cnn", "--rev", "v0.0.1", "-o", "data/model")
    assert files(clone / "data/model") == files(models["first"])
    run(clone, env, "dvc", "artifacts", "get", url, "mnist-cnn", "--stage", "prod", "-o", "prod-model")
    assert files(clone / "prod-model") == files(models["better"])
