"""Fixtures shared by the test modules: where the project and the real MNIST files are, the training
split and train params for small real runs, temporary copies of the project for the end-to-end and
fault tests, and the fault suite's one-line tally."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# Unfinished trainings' checkpoints (mnist_dvc.config.paths.RESUME) go to a folder of this session's,
# for every test and every process it starts, never to the user's own cache; removed when the session ends.
SESSION_CACHE = tempfile.TemporaryDirectory(prefix="mnist-dvc-tests-cache-")
os.environ["XDG_CACHE_HOME"] = os.environ.get("MNIST_TEST_CACHE") or SESSION_CACHE.name


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mnist_mirror() -> Path:
    """The local folder holding the four official MNIST .gz files (`MNIST_MIRROR`, else ../shared/mnist)."""
    folder = Path(os.environ.get("MNIST_MIRROR", REPO_ROOT.parent / "shared" / "mnist"))
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.fail(f"MNIST files not found in {folder}; set MNIST_MIRROR to a folder holding them")
    return folder


@pytest.fixture(scope="session")
def mnist_train(mnist_mirror):
    """The official training images and labels, decompressed once for the whole session and
    read-only, so that no test can change what the next one sees."""
    from mnist_dvc.io.idx import read_split

    images, labels = read_split(mnist_mirror / "train-images-idx3-ubyte.gz", mnist_mirror / "train-labels-idx1-ubyte.gz")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@pytest.fixture(scope="session")
def train_params(repo_root):
    """`train_params(**changes)`: the shipped params.yaml's train section with `changes`, validated."""
    from mnist_dvc.config.params import parse_params
    from mnist_dvc.config.settings import with_settings

    def make(**changes):
        params = yaml.safe_load((repo_root / "params.yaml").read_text())
        return parse_params(with_settings(params, {f"train.{key}": value for key, value in changes.items()})).train

    return make


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, repo_root, mnist_mirror, mnist_train, edit_params) -> Path:
    """A folder holding everything `mnist-dvc predict` and the page read, made by the real stages:
    a flat_mlp trained for two epochs on 3,000 deskewed digits, evaluated on 1,000 more, the
    ambiguous stage's outputs (data/raw linked to the official files, which its explanations show
    training digits from), and a copy of samples/."""
    from mnist_dvc.config import paths
    from mnist_dvc.digits.preparation import prepare
    from mnist_dvc.io.atomic import save_npz, write_json
    from stages import ambiguous, evaluate
    from stages import train as train_stage

    folder = tmp_path_factory.mktemp("trained")
    preparation = {"deskew": True, "stroke_width": None}
    images, labels = mnist_train
    digits = prepare(images[:4500], preparation)
    save_npz(folder / paths.TRAIN_NPZ, images=digits[:3000], labels=labels[:3000], index=np.arange(3000))
    for path in (paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).symlink_to(mnist_mirror / path.name)
    save_npz(folder / paths.VAL_NPZ, images=digits[3000:3500], labels=labels[3000:3500])
    save_npz(folder / paths.TEST_NPZ, images=digits[3500:], labels=labels[3500:4500], original=images[3500:4500],
             index=np.arange(1000))
    save_npz(folder / paths.TEST_VERDICTS_NPZ, index=np.arange(1000), labels=labels[3500:4500].astype(np.int64), verdicts=np.int64(0))
    write_json(folder / paths.PREPARATION_JSON, preparation)
    shutil.copy(repo_root / "params.yaml", folder / "params.yaml")
    # One view per digit: `mnist-dvc predict` judges a new digit in one view, so its tests compare it with
    # stage tables drawn from single-view probabilities (with `evaluate.tta` on, the stage's are averages of five).
    edit_params(folder, {"train.model": "flat_mlp", "train.epochs": 2, "train.batch_size": 64, "evaluate.tta": False})
    shutil.copytree(repo_root / "samples", folder / "samples")
    here = os.getcwd()
    os.chdir(folder)
    try:
        train_stage.main([])
        evaluate.main()
        ambiguous.main()
    finally:
        os.chdir(here)
    return folder


# --- Temporary projects: copies of the working tree, for the end-to-end and fault tests --------


@pytest.fixture(scope="session")
def working_tree_files(repo_root) -> list[str]:
    """The project's files as they are now, committed or not (ignored files such as data/ left out),
    so that the end-to-end and fault tests check the code being worked on, not the last commit."""
    listing = subprocess.run(
        ["git", "-C", str(repo_root), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True, check=True,
    ).stdout.decode()
    return sorted(name for name in set(listing.split("\0")) if name and (repo_root / name).is_file())


@pytest.fixture(scope="session")
def stage_env(mnist_mirror) -> dict[str, str]:
    """The environment stages and DVC run in: the local MNIST mirror, and this Python's bin first
    on PATH, so that `dvc` and `python` are the ones under test."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "MNIST_MIRROR": str(mnist_mirror), "PATH": path}


@pytest.fixture(scope="session")
def make_project(repo_root, working_tree_files, stage_env):
    """`make_project(folder, git=False)` copies the working tree into `folder`; with `git=True` it
    also makes it a git repository with one commit, as `dvc exp` needs (with its own identity, as
    a CI machine may have none)."""

    def make(folder: Path, git: bool = False) -> Path:
        for name in working_tree_files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root / name, folder / name)
        if git:
            for command in (["init", "-q"], ["config", "user.name", "pytest"], ["config", "user.email", "pytest@localhost"],
                            ["add", "-A"], ["commit", "-q", "-m", "project under test"]):
                subprocess.run(["git", *command], cwd=folder, env=stage_env, check=True, capture_output=True)
        return folder

    return make


@pytest.fixture(scope="session")
def launch_command() -> list[str]:
    """`mnist-dvc launch` as this Python runs it (the console script may belong to another environment)."""
    return [sys.executable, "-c", "from mnist_dvc.app.cli import main; main()", "launch"]


@pytest.fixture(scope="session")
def edit_params():
    """`edit_params(project, {"train.epochs": 3})` sets dotted keys in the project's params.yaml with
    the project's one dotted editor (`mnist_dvc.config.settings.with_settings`), adding any that are new (as
    a typo would), for runs without `dvc exp run -S`."""
    from mnist_dvc.config.settings import with_settings

    def edit(project: Path, changes: dict[str, object]) -> None:
        path = project / "params.yaml"
        path.write_text(yaml.safe_dump(with_settings(yaml.safe_load(path.read_text()), changes), sort_keys=False))

    return edit


# --- The browser tests: Debian's Chromium, driven by Playwright ---------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the module's tests; the test is skipped where Debian's is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}; install it with `apt-get install -y --no-install-recommends chromium` (as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000)
        yield chromium
        chromium.close()


# --- Counting the fault suite's cases ----------------------------------------------------------
# tests/e2e/test_faults.py marks each case `@pytest.mark.fault_case(kind)`, kind "bad input" or
# "fault injected"; `recovers=True` marks a fault the stage must get over (exit 0, complete output)
# rather than report. A case is handled when its test passes, since the test asserts exactly that.

FAULT_KINDS = ("bad input", "fault injected")
_FAULT_OUTCOMES = pytest.StashKey[dict]()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fault_case(kind, recovers=False): a fault-suite case, counted in the summary line"
    )
    config.stash[_FAULT_OUTCOMES] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    marker = item.get_closest_marker("fault_case")
    if marker is not None:
        kind = marker.args[0]
        if kind not in FAULT_KINDS:
            raise ValueError(f"{item.nodeid}: fault_case kind {kind!r} is not one of {FAULT_KINDS}")
        outcomes = item.config.stash[_FAULT_OUTCOMES]
        case = outcomes.setdefault(item.nodeid, {"kind": kind, "recovers": marker.kwargs.get("recovers", False),
                                                 "passed": True, "skipped": False})
        case["passed"] &= not report.failed
        case["skipped"] |= report.skipped
    return report


def fault_summary(outcomes: dict) -> str:
    """One line: how many cases of each kind ran and how many ended as they must."""
    ran = [case for case in outcomes.values() if not case["skipped"]]
    errors = [case for case in ran if not case["recovers"]]
    recoveries = [case for case in ran if case["recovers"]]
    bad = sum(case["kind"] == "bad input" for case in ran)
    injected = len(ran) - bad
    line = (f"fault suite: {bad} bad input{'s' * (bad != 1)} tried, {injected} fault{'s' * (injected != 1)} injected; "
            f"{sum(case['passed'] for case in errors)} of {len(errors)} ended with a clear error and no partial output")
    if recoveries:
        line += f", {sum(case['passed'] for case in recoveries)} of {len(recoveries)} recovered with complete output"
    skipped = len(outcomes) - len(ran)
    return line + (f" ({skipped} skipped)" if skipped else "")


def pytest_terminal_summary(terminalreporter, config):
    outcomes = config.stash.get(_FAULT_OUTCOMES, {})
    if outcomes:
        terminalreporter.write_line(fault_summary(outcomes))


# --- Finding digits in the pictures the stages draw ---------------------------------------------


@pytest.fixture(scope="session")
def digit_places():
    """`digit_places(page, digit, scale=3)`: (top, left) of every place where the uint8 28x28 `digit`,
    `scale` times larger, is drawn in grey on `page` (an RGB array), to check which digits a
    gallery shows without relying on its layout."""
    from mnist_dvc.analysis.pictures import upscale

    def places(page: np.ndarray, digit: np.ndarray, scale: int = 3) -> list[tuple[int, int]]:
        tile = upscale(digit, scale)
        height, width = tile.shape
        anchor = int(np.argmax([len(np.unique(row)) for row in tile]))  # the tile's most varied row
        windows = np.lib.stride_tricks.sliding_window_view(page[..., 0], width, axis=1)  # (rows, lefts, width)
        found = []
        for top, left in zip(*np.nonzero((windows == tile[anchor]).all(axis=2))):
            top -= anchor
            if 0 <= top <= len(page) - height and np.array_equal(page[top : top + height, left : left + width], np.stack([tile] * 3, axis=2)):
                found.append((int(top), int(left)))
        return found

    return places

