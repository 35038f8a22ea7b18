"""The registry's versions and stages on real git tags (GTO) in throwaway git repositories holding the
committed run's scores: what `promote` tags and refuses, which version a stage holds, and the one-line
errors. Fetching a model needs DVC and is tested end to end (tests/e2e/test_promotion.py)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gto.api import assign, register

from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.errors import UserError
from mnist_dvc.release.registry import ARTIFACT, CANDIDATE_FILES, PROD, Version, at_stage, head, promote


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return head(root)


def set_accuracy(root: Path, accuracy: float) -> None:
    path = root / paths.METRICS_JSON
    path.write_text(json.dumps({**json.loads(path.read_text()), "accuracy": accuracy}, indent=2) + "\n")


def tags(root: Path) -> set[str]:
    return set(git(root, "tag", "--list").split())


@pytest.fixture
def repo(tmp_path, repo_root) -> Path:
    """A git repository whose one commit holds the committed run's dvc.lock and scores, its test
    accuracy set to 0.9951 so that the figures below do not change with each re-recorded run."""
    root = tmp_path / "repo"
    for name in CANDIDATE_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(repo_root / name, root / name)
    set_accuracy(root, 0.9951)
    git(tmp_path, "init", "-q", str(root))
    git(root, "config", "user.name", "pytest")
    git(root, "config", "user.email", "pytest@localhost")
    commit(root, "the committed run")
    return root


@pytest.fixture(scope="module")
def gate(repo_root):
    return load_params("gate", repo_root / "params.yaml")


def test_dvc_yaml_declares_the_artifact_at_the_models_path(repo_root):
    declared = yaml.safe_load((repo_root / "dvc.yaml").read_text())["artifacts"][ARTIFACT]
    assert declared["path"] == paths.MODEL.as_posix() and declared["type"] == "model"


def test_the_first_promotion_registers_a_version_and_assigns_prod(repo, gate):
    assert at_stage(repo, PROD) is None
    promotion = promote(repo, gate)
    assert promotion.decision.passed and promotion.tags == ("mnist-cnn@v0.0.1", "mnist-cnn#prod#1")
    assert tags(repo) == set(promotion.tags)
    assert at_stage(repo, PROD) == Version("v0.0.1", head(repo))
    assert git(repo, "tag", "-l", "--format=%(contents)", "mnist-cnn#prod#1").strip() == promotion.decision.line


def test_refusals_make_no_tag(repo, gate):
    promote(repo, gate)
    again = promote(repo, gate)
    assert not again.decision.passed and again.tags == ()
    assert again.decision.line == f"refused: HEAD is already at prod: mnist-cnn@v0.0.1 (commit {head(repo)[:8]})"
    set_accuracy(repo, 0.9953)
    commit(repo, "too small a gain")
    refused = promote(repo, gate)
    assert refused.tags == () and refused.decision.line == "refused: test accuracy 0.9953 vs prod 0.9951: gain 0.0002 < gate.min_gain 0.0005"
    assert tags(repo) == {"mnist-cnn@v0.0.1", "mnist-cnn#prod#1"}


def test_the_stage_holds_the_version_assigned_last_even_within_one_second(repo, gate):
    first = head(repo)
    promote(repo, gate)
    set_accuracy(repo, 0.9961)
    second = commit(repo, "better")
    assert promote(repo, gate).tags == ("mnist-cnn@v0.0.2", "mnist-cnn#prod#2")
    assert at_stage(repo, PROD) == Version("v0.0.2", second)
    # rolling back: v0.0.1 assigned prod again (it still holds it in GTO's eyes, hence force)
    assign(str(repo), ARTIFACT, PROD, version="v0.0.1", force=True)
    assert at_stage(repo, PROD) == Version("v0.0.1", first)
    assert at_stage(repo, "dev") is None


def test_a_version_registered_by_hand_is_kept(repo, gate):
    register(str(repo), ARTIFACT, "HEAD", version="v1.0.0")
    promotion = promote(repo, gate)
    assert promotion.decision.passed and promotion.tags == ("mnist-cnn#prod#1",)
    assert at_stage(repo, PROD) == Version("v1.0.0", head(repo))


@pytest.mark.parametrize("change", ["edit", "add"])
def test_a_workspace_whose_run_is_not_committed_is_refused_in_one_line(repo, gate, change):
    if change == "edit":
        set_accuracy(repo, 0.999)
    else:
        git(repo, "rm", "-q", "--cached", str(paths.PER_DIGIT_CSV))
        git(repo, "commit", "-q", "-m", "per-digit scores not yet committed")
    with pytest.raises(UserError) as raised:
        promote(repo, gate)
    changed = "eval/metrics.json" if change == "edit" else "eval/per_digit.csv"
    assert str(raised.value) == (f"{changed} differ(s) from HEAD's: commit the run first (git add dvc.lock eval/metrics.json "
                                 "eval/per_digit.csv && git commit), so that the version's tag points at the commit that holds the candidate")
    assert tags(repo) == set()


def test_a_prod_commit_without_scores_is_named(repo, gate, repo_root):
    git(repo, "rm", "-q", str(paths.METRICS_JSON))
    register(str(repo), ARTIFACT, commit(repo, "no scores"))
    assign(str(repo), ARTIFACT, PROD, version="v0.0.1")
    shutil.copy(repo_root / paths.METRICS_JSON, repo / paths.METRICS_JSON)
    prod = commit(repo, "scores back")
    with pytest.raises(UserError, match=rf"^prod: mnist-cnn@v0.0.1 \(commit {git(repo, 'rev-parse', 'HEAD~1')[:8]}\): "
                                        r"eval/metrics.json is not in the commit; run the pipeline and commit its results$"):
        promote(repo, gate)
    assert prod == head(repo)


def test_no_repository_is_one_line(tmp_path, gate):
    with pytest.raises(UserError, match=rf"^{tmp_path}: no git commit here \(fatal: not a git repository.*the model registry is a git repository's tags$"):
        promote(tmp_path, gate)
