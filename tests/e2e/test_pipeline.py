"""End to end: the whole pipeline driven by real DVC commands in a temporary git repository.

One project (a copy of the working tree, committed) serves every test, so the MNIST download and the
JIT compilations are paid once or twice rather than per test; each test sets every parameter it
depends on, so the tests only share the first experiment (`first_run`), not each other's state.
Runs use a small slice of MNIST and a narrow network, to finish in a few minutes on two CPU cores.
"""

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from mnist_dvc.analysis.ambiguity import DEFINITIONS
from mnist_dvc.io.mirrors import SHA256

pytestmark = pytest.mark.e2e

# The pipeline's stages in the order `dvc repro` runs them (one chain: each needs the one before).
STAGES = tuple(yaml.safe_load((Path(__file__).resolve().parents[2] / "dvc.yaml").read_text())["stages"])
AFTER_PREPROCESS = STAGES[STAGES.index("train"):]  # what a change of train params reruns
# eval/metrics.json: the headline, the calibration figures and the accuracy against the reviewed labels
# (tests/e2e/test_review_pipeline.py); per digit: eval/per_digit.csv
HEADLINE = {"accuracy", "loss", "errors", "macro_f1", "temperature", "ece_before", "ece_after", "loss_calibrated",
            "reviewed_accuracy", "reviewed_digits", "test_verdicts"}
TEST_DIGITS = 500
# The small slice. vgg_bn's BatchNorm running statistics need a few hundred steps to settle, so the
# default batch of 128 on a one-cycle schedule (14 steps an epoch here) still scores near chance;
# batches of 16 at a constant rate reach about 90% test accuracy in two epochs.
SLICE = {
    "preprocess.train_subset": 2000, "preprocess.test_subset": TEST_DIGITS, "preprocess.val_size": 200,
    "train.width": 8, "train.batch_size": 16, "train.schedule": "constant", "train.learning_rate": 0.01,
    "evaluate.examples": 4, "ambiguous.top_n": 5, "review.top.test": 10,
}
BASE = {**SLICE, "train.epochs": 2, "train.seed": 0}
HISTORY_RESULTS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")  # all but seconds


@dataclass
class Workspace:
    """The temporary project and the environment its commands run in."""

    root: Path
    env: dict[str, str]

    def run(self, *command: str, timeout: float = 300, check: bool = True) -> str:
        """Runs a command in the project; returns its stdout and stderr together."""
        result = subprocess.run(command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)
        output = result.stdout + result.stderr
        if check:
            assert result.returncode == 0, f"`{' '.join(command)}` exited with {result.returncode}:\n{output}"
        return output

    def dvc(self, *args: str, **kwargs) -> str:
        return self.run("dvc", *args, **kwargs)

    def dvc_json(self, *args: str):
        return json.loads(self.run("dvc", *args, "--json").strip() or "null")

    def exp_run(self, name: str, params: dict, *options: str) -> str:
        overrides = [arg for key, value in params.items() for arg in ("-S", f"{key}={value}")]
        return self.dvc("exp", "run", *options, "-n", name, *overrides)

    def json(self, path: str) -> dict:
        return json.loads((self.root / path).read_text())

    def csv(self, path: str) -> pd.DataFrame:
        return pd.read_csv(self.root / path)


@pytest.fixture(scope="module")
def workspace(make_project, stage_env, tmp_path_factory) -> Workspace:
    return Workspace(make_project(tmp_path_factory.mktemp("e2e") / "project", git=True), stage_env)


@pytest.fixture(scope="module")
def first_run(workspace) -> dict:
    """The first experiment, on the small slice; what it printed and the bytes of its results."""
    output = workspace.exp_run("base", BASE)
    return {
        "output": output,
        "metrics": (workspace.root / "eval/metrics.json").read_bytes(),
        "model": (workspace.root / "data/model/model.msgpack").read_bytes(),
    }


def experiments(workspace: Workspace) -> dict[str, dict]:
    """Every experiment in `dvc exp show`, by name: its params.yaml and metrics."""
    found = {}
    for row in workspace.dvc_json("exp", "show"):
        for experiment in row.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev["data"]
                found[rev["name"]] = {
                    "params": data["params"]["params.yaml"]["data"],
                    "metrics": {path: value.get("data", {}) for path, value in (data.get("metrics") or {}).items()},
                }
    return found


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def test_first_experiment_runs_every_stage_and_writes_sensible_outputs(workspace, first_run, mnist_mirror):
    assert ran_stages(first_run["output"]) == list(STAGES)
    root = workspace.root

    shown = workspace.dvc_json("metrics", "show")
    (workspace_metrics,) = shown.values()
    accuracy = workspace_metrics["data"]["eval/metrics.json"]["data"]["accuracy"]

    # download: the four official files, byte for byte
    assert sorted(path.name for path in (root / "data/raw").iterdir()) == sorted(SHA256)
    for name in SHA256:
        assert (root / "data/raw" / name).read_bytes() == (mnist_mirror / name).read_bytes()

    # preprocess: the slice, split 1800 / 200, the test set with its raw images and official indices
    with np.load(root / "data/prepared/train.npz") as train, np.load(root / "data/prepared/val.npz") as val, \
            np.load(root / "data/prepared/test.npz") as test:
        assert train["images"].shape == (1800, 28, 28) and train["images"].dtype == np.uint8
        assert train["labels"].shape == (1800,) and set(np.unique(train["labels"])) == set(range(10))
        assert val["images"].shape == (200, 28, 28) and val["labels"].shape == (200,)
        assert test["images"].shape == test["original"].shape == (TEST_DIGITS, 28, 28)
        assert test["labels"].shape == (TEST_DIGITS,)
        np.testing.assert_array_equal(test["index"], np.arange(TEST_DIGITS))
    counts = workspace.csv("eval/digit_counts.csv")
    assert counts["digit"].tolist() == list(range(10))
    assert counts["test"].sum() == TEST_DIGITS

    # train: the model the params asked for, and one history row per epoch
    description = workspace.json("data/model/model.json")
    assert description["model"] == "vgg_bn" and description["width"] == 8
    assert (root / "data/model/model.msgpack").stat().st_size > 0
    assert workspace.csv("eval/train_history.csv")["epoch"].tolist() == [1, 2]

    # evaluate: metrics far above chance, per-digit scores, one confusion row per test digit, the examples shown
    metrics = workspace.json("eval/metrics.json")
    assert set(metrics) == HEADLINE
    assert metrics["accuracy"] == accuracy > 0.5
    assert metrics["temperature"] > 0 and metrics["ece_after"] <= metrics["ece_before"]
    reliability = workspace.csv("eval/reliability.csv")
    assert reliability["probabilities"].iloc[0] == "raw" and set(reliability["probabilities"]) == {"raw", "calibrated"}
    per_digit = workspace.csv("eval/per_digit.csv")
    assert per_digit["digit"].tolist() == list(range(10))
    assert list(per_digit.columns) == ["digit", "precision", "recall", "f1", "support"]
    confusion = workspace.csv("eval/confusion.csv")
    assert len(confusion) == TEST_DIGITS
    right = (confusion["actual"] == confusion["predicted"]).sum()
    assert right / TEST_DIGITS == pytest.approx(metrics["accuracy"])
    assert per_digit["support"].tolist() == [(confusion["actual"] == digit).sum() for digit in range(10)]
    assert per_digit[["precision", "recall", "f1"]].stack().between(0, 1).all()
    examples = workspace.csv("data/eval/examples.csv")
    assert 0 < len(examples) <= 2 * BASE["evaluate.examples"]
    for index in examples["index"]:
        assert index < TEST_DIGITS
        assert (root / "data/eval/examples" / f"{index}.png").is_file()
    assert (root / "data/eval/examples.png").stat().st_size > 0

    # ambiguous: per definition, PNGs named by test index, a table and a gallery; the summary
    assert len(DEFINITIONS) == 5
    summary = workspace.json("data/ambiguous/summary.json")
    assert set(summary) == {*DEFINITIONS, "temperature"}
    for name in DEFINITIONS:
        folder = root / "data/ambiguous" / name
        pictures = sorted(int(path.stem) for path in folder.glob("*.png"))
        assert 0 < len(pictures) <= BASE["ambiguous.top_n"]
        assert all(0 <= index < TEST_DIGITS for index in pictures)
        assert sorted(int(row["index"]) for row in summary[name]["digits"]) == pictures
        assert len(workspace.csv(f"data/ambiguous/{name}/table.csv")) == len(pictures)
        assert (root / "data/ambiguous/galleries" / f"{name}.png").stat().st_size > 0
    # least-confident always finds top_n digits (confident-wrong needs errors to find)
    assert len(summary["least_confident"]["digits"]) == BASE["ambiguous.top_n"]


def test_second_experiment_reruns_only_what_changed(workspace, first_run):
    output = workspace.exp_run("more-epochs", {**BASE, "train.epochs": 3})
    assert "Stage 'download' didn't change, skipping" in output
    assert "Stage 'preprocess' didn't change, skipping" in output
    assert ran_stages(output) == list(AFTER_PREPROCESS)
    assert workspace.csv("eval/train_history.csv")["epoch"].tolist() == [1, 2, 3]

    changes = workspace.dvc_json("metrics", "diff", "base", "more-epochs")["eval/metrics.json"]
    before, after = json.loads(first_run["metrics"]), workspace.json("eval/metrics.json")
    assert changes["accuracy"]["old"] == before["accuracy"]
    assert changes["accuracy"]["new"] == after["accuracy"]
    assert changes["accuracy"].get("diff", 0) == pytest.approx(after["accuracy"] - before["accuracy"])
    assert changes["loss"]["old"] != changes["loss"]["new"]

    shown = experiments(workspace)
    assert {"base", "more-epochs"} <= set(shown)
    assert [shown[name]["params"]["train"]["epochs"] for name in ("base", "more-epochs")] == [2, 3]
    assert shown["more-epochs"]["metrics"]["eval/metrics.json"]["accuracy"] == after["accuracy"]


@pytest.mark.parametrize("module", ["mnist_dvc/io/atomic.py", "mnist_dvc/analysis/explain.py", "mnist_dvc/digits/kaggle_csv.py"])
def test_a_change_to_a_shared_module_makes_dvc_see_exactly_the_stages_that_import_it(workspace, first_run, module):
    """Real `dvc status` after an edit: the stages it names are those whose code imports the module,
    found by walking the imports (tests/import_graph.py), not by reading dvc.yaml's deps."""
    from import_graph import import_closure, module_file

    scripts = {name: re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1) for name, stage in
               yaml.safe_load((workspace.root / "dvc.yaml").read_text())["stages"].items()}
    importers = {name for name, script in scripts.items() if Path(module) in import_closure(module_file(script))}
    assert importers  # each module chosen is imported by some stage
    path = workspace.root / module
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        status = workspace.dvc_json("status", "dvc.yaml")
    finally:
        path.write_text(original)
    seeing = {name for name, changes in status.items()
              if any(module in change.get("changed deps", {}) for change in changes if isinstance(change, dict))}
    assert seeing == importers


def test_same_params_and_seed_give_identical_results(workspace, first_run):
    shutil.rmtree(workspace.root / "data/checkpoints", ignore_errors=True)  # or train would resume
    output = workspace.exp_run("base-again", BASE, "--force")  # --force: run every stage, no run cache
    assert ran_stages(output) == list(STAGES)
    assert "resuming" not in output
    assert (workspace.root / "eval/metrics.json").read_bytes() == first_run["metrics"]
    assert (workspace.root / "data/model/model.msgpack").read_bytes() == first_run["model"]


def stage_process(parent: subprocess.Popen, stage: str) -> psutil.Process | None:
    """The `python -m stages.<stage>` process that DVC started (under a shell), if it runs yet."""
    for process in psutil.Process(parent.pid).children(recursive=True):
        try:
            if process.cmdline()[-2:] == ["-m", f"stages.{stage}"]:
                return process
        except psutil.NoSuchProcess:
            continue
    return None


def train_results(workspace: Workspace) -> tuple[bytes, list[tuple]]:
    history = [tuple(row) for row in workspace.csv("eval/train_history.csv")[list(HISTORY_RESULTS)].itertuples(index=False)]
    return (workspace.root / "data/model/model.msgpack").read_bytes(), history


def test_a_killed_training_resumes_and_ends_as_if_never_stopped(workspace, first_run, edit_params):
    root = workspace.root
    checkpoint = root / "data/checkpoints/last.msgpack"
    edit_params(root, {**BASE, "train.epochs": 3, "train.seed": 7})  # a seed no earlier run used
    shutil.rmtree(checkpoint.parent, ignore_errors=True)

    with open(root.parent / "killed-run.log", "w") as log:
        repro = subprocess.Popen(["dvc", "repro", "train"], cwd=root, env=workspace.env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and repro.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        trainer = stage_process(repro, "train")
        assert checkpoint.exists() and trainer is not None, (root.parent / "killed-run.log").read_text()
        trainer.send_signal(signal.SIGKILL)
        assert repro.wait(60) != 0
    finally:  # never leave a training process behind, whatever failed above
        if repro.poll() is None:
            for process in psutil.Process(repro.pid).children(recursive=True):
                process.kill()
            repro.kill()
        repro.wait()

    resumed_output = workspace.dvc("repro", "train")
    resumed = re.search(r"resuming after epoch (\d)", resumed_output)
    assert resumed and int(resumed[1]) < 3, resumed_output
    resumed_model, resumed_history = train_results(workspace)
    assert [row[0] for row in resumed_history] == [1, 2, 3]

    shutil.rmtree(checkpoint.parent)
    uninterrupted_output = workspace.run(sys.executable, "-m", "stages.train")
    assert "resuming" not in uninterrupted_output
    model, history = train_results(workspace)
    assert resumed_history == history
    assert resumed_model == model


def queue_states(workspace: Workspace) -> dict[str, str]:
    """`dvc queue status` as {experiment name: Queued / Running / Success / Failed ...}."""
    states = {}
    for line in workspace.dvc("queue", "status").splitlines():
        fields = line.split()
        if len(fields) >= 4 and re.fullmatch(r"[0-9a-f]{7}", fields[0]):
            states[fields[1]] = fields[-1]
    return states


def test_two_queued_experiments_run_in_parallel_workers(workspace, first_run):
    seeds = {"queued-seed-1": 1, "queued-seed-2": 2}
    for name, seed in seeds.items():
        workspace.exp_run(name, {**BASE, "train.seed": seed}, "--queue")
    assert {name: queue_states(workspace)[name] for name in seeds} == {name: "Queued" for name in seeds}
    try:
        workspace.dvc("queue", "start", "-j", "2")
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            states = {name: queue_states(workspace).get(name) for name in seeds}
            if all(state not in ("Queued", "Running") for state in states.values()):
                break
            time.sleep(3)
    finally:
        workspace.dvc("queue", "stop", "--kill", check=False)
    assert states == {name: "Success" for name in seeds}, workspace.dvc("queue", "logs", next(iter(seeds)), check=False)

    shown = experiments(workspace)
    for name, seed in seeds.items():
        assert shown[name]["params"]["train"]["seed"] == seed
        assert shown[name]["params"]["train"]["epochs"] == BASE["train.epochs"]
        metrics = shown[name]["metrics"]["eval/metrics.json"]
        assert metrics["accuracy"] > 0.5 and set(metrics) == HEADLINE
        assert ran_stages(workspace.dvc("queue", "logs", name))[-len(AFTER_PREPROCESS):] == list(AFTER_PREPROCESS)


def test_plots_show_writes_one_page_with_curves_confusion_and_galleries(workspace, first_run, tmp_path):
    output = workspace.dvc("plots", "show", "-o", str(tmp_path / "plots"))
    page = tmp_path / "plots" / "index.html"
    assert page.as_uri() in output
    html = page.read_text()
    for title in ("eval/confusion.csv", "Digits per split", "Accuracy", "Loss", "F1 per digit on the test set",
                  "Reliability on the test set (raw and temperature-scaled)"):
        assert title in html
    images = {path.name: path for path in (tmp_path / "plots" / "static").glob("*.png")}
    wanted = ["data_eval_examples.png"] + [f"data_ambiguous_galleries_{name}.png" for name in DEFINITIONS]
    for suffix in wanted:
        (found,) = [path for name, path in images.items() if name.endswith(suffix)]
        assert found.read_bytes().startswith(b"\x89PNG")
        assert f"static/{found.name}" in html


def test_a_committee_trains_every_member_then_votes(workspace, first_run):
    members = {"committee.models": "[vgg_bn]", "committee.seeds": "[1,2]"}
    output = workspace.dvc("exp", "run", "committee/dvc.yaml", "-n", "committee",
                           *(arg for key, value in {**BASE, **members}.items() for arg in ("-S", f"{key}={value}")))
    names = ["vgg_bn-1", "vgg_bn-2"]
    assert sorted(re.findall(r"Running stage 'committee/dvc.yaml:member@([\w-]+)'", output)) == names
    assert "Running stage 'committee/dvc.yaml:vote'" in output
    assert "Running stage 'train'" not in output  # the main pipeline's model is not a member

    scores = experiments(workspace)["committee"]["metrics"]["eval/committee.json"]
    assert sorted(scores["members"]) == names
    assert scores["members"]["vgg_bn-1"] != scores["members"]["vgg_bn-2"]  # seeds make different members
    assert 0.5 < scores["accuracy"] <= 1
