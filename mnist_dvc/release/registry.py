"""The model registry: versions and stages of the model `mnist-cnn` as git tags made by GTO, the
tags `dvc artifacts get` and `gto show` read (docs/registry.md).

A version is a tag `mnist-cnn@vX.Y.Z` on the commit whose dvc.lock records the model; a stage is a
tag `mnist-cnn#<stage>#N` on that same commit. The model at a stage is the version whose assignment
to it is the latest (by the tag's time, then its counter N), as `dvc artifacts get --stage` picks it,
so assigning an older version again rolls the stage back to it.

`promote` gates the workspace's HEAD against the model at `prod` (`mnist_dvc.release.gate`), reading
both commits' eval/metrics.json and eval/per_digit.csv from git, and tags HEAD only if it passes.
`fetch` brings the model at a stage, and the ambiguous stage's summary of the same commit (its cutoffs
and calibration temperature belong to that model), from DVC's cache or remote into a folder per commit.
"""

import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mnist_dvc.config import paths
from mnist_dvc.config.params import Gate
from mnist_dvc.errors import UserError, one_line
from mnist_dvc.io.atomic import atomic_dir
from mnist_dvc.release.gate import Decision, Scores, decide

ARTIFACT = "mnist-cnn"  # dvc.yaml's `artifacts:` entry for paths.MODEL (tests/unit/release/test_registry.py checks they agree)
PROD = "prod"  # the stage `promote` gates and assigns
# What promote reads at HEAD, and so what must be committed: the run's lock (the model's hash) and its scores.
CANDIDATE_FILES = ("dvc.lock", str(paths.METRICS_JSON), str(paths.PER_DIGIT_CSV))


@dataclass(frozen=True)
class Version:
    """A registered version of the model: its name (v0.0.1) and the commit its tag points at."""

    name: str
    commit: str

    @property
    def tag(self) -> str:
        return f"{ARTIFACT}@{self.name}"

    def __str__(self) -> str:
        return f"{self.tag} (commit {self.commit[:8]})"


@dataclass(frozen=True)
class Promotion:
    decision: Decision
    tags: tuple[str, ...]  # the git tags made, none on refusal


@dataclass(frozen=True)
class Fetched:
    version: Version
    model: Path
    summary: Path  # the ambiguous stage's summary.json of the same commit


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise UserError(f"git {' '.join(args)} in {root}: {one_line(done.stderr) or f'exit status {done.returncode}'}")
    return done.stdout


def head(root: Path) -> str:
    """HEAD's commit; `UserError` where `root` is no git repository or has no commit yet."""
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "HEAD^{commit}"], capture_output=True, text=True)
    if done.returncode:
        raise UserError(f"{root}: no git commit here ({one_line(done.stderr)}); the model registry is a git repository's tags")
    return done.stdout.strip()


def _artifact(root: Path):
    """GTO's state of the model's tags in `root` (empty where none was made yet)."""
    from gto.exceptions import GTOException
    from gto.registry import GitRegistry

    head(root)  # a clear line where root is no repository, before GTO's own words for it
    try:
        with GitRegistry.from_url(str(root)) as registry:
            return registry.get_state().find_artifact(ARTIFACT, create_new=True)
    except GTOException as error:
        raise UserError(f"the model registry's tags in {root}: {one_line(error)}") from None


def at_stage(root: Path, stage: str) -> Version | None:
    """The version at `stage`: of those assigned to it and not unassigned since, the one assigned last."""
    from gto.tag import COUNTER, parse_name

    held = _artifact(root).get_vstages(versions_per_stage=-1).get(stage)
    if not held:
        return None
    latest = max(held, key=lambda vstage: max((a.created_at, parse_name(a.tag).get(COUNTER, 0)) for a in vstage.assignments))
    return Version(latest.version, latest.commit_hexsha)


def scores_at(root: Path, commit: str, source: str) -> Scores:
    """The scores committed at `commit` (eval/metrics.json, eval/per_digit.csv, read from git)."""
    texts = {}
    for path in (paths.METRICS_JSON, paths.PER_DIGIT_CSV):
        done = subprocess.run(["git", "-C", str(root), "show", f"{commit}:{path.as_posix()}"], capture_output=True, text=True)
        if done.returncode:
            raise UserError(f"{source}: {path} is not in the commit; run the pipeline and commit its results")
        texts[path] = done.stdout
    try:
        metrics = json.loads(texts[paths.METRICS_JSON])
        per_digit = pd.read_csv(io.StringIO(texts[paths.PER_DIGIT_CSV]))
    except (ValueError, pd.errors.ParserError) as error:
        raise UserError(f"{source}: eval/metrics.json or eval/per_digit.csv cannot be read: {one_line(error)}") from None
    return Scores.read(metrics, per_digit, source)


def _check_committed(root: Path) -> None:
    """`UserError` unless HEAD holds the workspace's run: the tags go on HEAD, so it must be the candidate."""
    changed = [line[3:] for line in _git(root, "status", "--porcelain", "--untracked-files=all", "--", *CANDIDATE_FILES).splitlines()]
    if changed:
        raise UserError(f"{', '.join(changed)} differ(s) from HEAD's: commit the run first (git add {' '.join(CANDIDATE_FILES)} && "
                        "git commit), so that the version's tag points at the commit that holds the candidate")


def promote(root: Path, gate: Gate) -> Promotion:
    """Gates HEAD against the model at `prod`; if it passes, registers HEAD as the next version (or
    keeps the version it already has) and assigns it `prod`, the gate's line as the tag's message."""
    from gto.api import assign, register
    from gto.exceptions import GTOException

    commit = head(root)
    _check_committed(root)
    prod = at_stage(root, PROD)
    if prod is not None and prod.commit == commit:
        return Promotion(Decision(False, f"refused: HEAD is already at {PROD}: {prod}"), ())
    candidate = scores_at(root, commit, f"HEAD (commit {commit[:8]})")
    decision = decide(candidate, None if prod is None else scores_at(root, prod.commit, f"{PROD}: {prod}"), gate)
    if not decision.passed:
        return Promotion(decision, ())
    tags = []
    try:
        version = _registered(root, commit)
        if version is None:
            registration = register(str(root), ARTIFACT, commit)
            tags.append(registration.tag)
            version = registration.version
        tags.append(assign(str(root), ARTIFACT, PROD, version=version, message=decision.line).tag)
    except GTOException as error:
        raise UserError(f"tagging {commit[:8]} in {root}: {one_line(error)}" + (f" (made {', '.join(tags)})" if tags else "")) from None
    return Promotion(decision, tuple(tags))


def _registered(root: Path, commit: str) -> str | None:
    """The version already registered for `commit` (say by `gto register`), if any."""
    found = _artifact(root).find_version(commit_hexsha=commit)
    return found.version if found is not None and found.is_registered and found.is_active else None


def fetch(root: Path, stage: str) -> Fetched:
    """The model at `stage` and its commit's ambiguity summary, under data/registry/<commit>/: fetched
    once (from DVC's cache, else its remote) into a temporary folder and renamed into place whole,
    then reused."""
    version = at_stage(root, stage)
    if version is None:
        raise UserError(f"no version of {ARTIFACT} is at stage {stage!r} in {root} (`gto show {ARTIFACT}` lists them; "
                        f"`mnist-dvc promote` puts one at {PROD})")
    folder = root / paths.REGISTRY / version.commit
    fetched = Fetched(version, folder / "model", folder / "summary.json")
    if not folder.is_dir():
        from dvc.api import DVCFileSystem
        from dvc.exceptions import DvcException
        from dvc_data.index.index import DataIndexError, StorageError

        source = paths.MODEL
        try:
            with atomic_dir(folder) as tmp:
                fs = DVCFileSystem(str(root), rev=version.commit)
                fs.get(paths.MODEL.as_posix(), str(tmp / "model"), recursive=True)
                source = paths.AMBIGUOUS_SUMMARY
                fs.get_file(paths.AMBIGUOUS_SUMMARY.as_posix(), str(tmp / "summary.json"))
        except (DvcException, DataIndexError, StorageError, FileNotFoundError) as error:
            raise UserError(f"{source} of {version}, at stage {stage}: not in DVC's cache or remote "
                            f"(`dvc push` it from where it was made): {one_line(error)}") from None
    return fetched
