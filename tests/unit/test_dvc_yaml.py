"""The pipeline files themselves: every stage depends on exactly the project code it runs, the
committee's members on what the train stage does, and every data path on `mnist_dvc.config.paths`."""

import re
from pathlib import Path

import pytest
import yaml
from import_graph import REPO, import_closure, module_file

from mnist_dvc.config import paths

PIPELINES = ("dvc.yaml", "committee/dvc.yaml", "audit/dvc.yaml", "export/dvc.yaml")


def stages_of(pipeline: str) -> dict[str, dict]:
    return yaml.safe_load((REPO / pipeline).read_text())["stages"]


def code_deps(stage: dict) -> set[Path]:
    return {Path(dep) for dep in stage["deps"] if str(dep).endswith(".py")}


def test_every_pipeline_file_is_checked_here():
    found = {str(path.relative_to(REPO)) for path in [REPO / "dvc.yaml", *REPO.glob("*/dvc.yaml")] if path.is_file()}
    assert found == set(PIPELINES), f"pipeline files {sorted(found ^ set(PIPELINES))}: list each in PIPELINES (and only those)"


STAGES = [pytest.param(pipeline, name, stage, id=f"{pipeline}:{name}")
          for pipeline in PIPELINES for name, stage in stages_of(pipeline).items()]


@pytest.mark.parametrize(("pipeline", "name", "stage"), STAGES)
def test_each_stage_depends_on_exactly_the_project_files_it_imports(pipeline, name, stage):
    script = re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1)
    needed = import_closure(module_file(script))
    declared = code_deps(stage)
    assert not needed - declared, f"{pipeline}: stage {name} imports {sorted(map(str, needed - declared))}, not in its deps"
    assert not declared - needed, f"{pipeline}: stage {name} lists {sorted(map(str, declared - needed))}, which it never imports"


def test_a_committee_member_is_the_train_stage_with_its_own_model_seed_and_folder():
    train, member = stages_of("dvc.yaml")["train"], stages_of("committee/dvc.yaml")["member"]
    assert set(member["deps"]) == set(train["deps"])
    from mnist_dvc.config.params import Train

    assert set(member["params"]) == {f"train.{key}" for key in Train.model_fields} - {"train.model", "train.seed"}
    assert train["params"] == ["train"]


def test_an_audit_fold_trains_with_the_train_section_but_its_epochs():
    fold = stages_of("audit/dvc.yaml")["fold"]
    from mnist_dvc.config.params import Train

    train_keys = {f"train.{key}" for key in Train.model_fields} - {"train.epochs"}
    assert set(fold["params"]) == train_keys | {"audit.folds", "audit.epochs", "audit.seed", "preprocess.train_subset"}
    assert "audit.top_n" in stages_of("audit/dvc.yaml")["audit"]["params"]  # galleries only: no retraining


def test_the_second_training_depends_on_every_strength_of_its_distorted_copies_and_no_more():
    from mnist_dvc.config.params import Preprocess

    augment = Preprocess.model_fields["augment"].annotation  # the params schema's preprocess.augment section
    retrain = stages_of("audit/dvc.yaml")["retrain"]
    strengths = [key for key in retrain["params"] if key.startswith("preprocess.augment.")]
    # The stage distorts with preprocess.augment's strengths (`model_dump(exclude={"copies"})`): a new
    # field of the section must be listed here too, and `copies` (of the preprocess stage) must not.
    assert set(strengths) == {f"preprocess.augment.{key}" for key in augment.model_fields} - {"preprocess.augment.copies"}
    assert {"train", "retrain"} <= set(retrain["params"])


def data_paths(value) -> list[str]:
    """Every data/ or eval/ path named in a stage's deps, outs, metrics or plots."""
    entries = value if isinstance(value, list) else [value]
    names = [next(iter(e)) if isinstance(e, dict) else e for e in entries]
    return [n for n in names if isinstance(n, str) and n.startswith(("data/", "eval/"))]


def test_every_data_path_in_the_pipelines_is_declared_in_stages_lib_paths():
    declared = {str(value) for value in vars(paths).values() if isinstance(value, Path)}
    for outputs in (paths.TRAIN, paths.RETRAIN):
        declared |= {str(p) for p in vars(outputs).values()} | {str(p.parent) for p in vars(outputs).values()}
    for pipeline in PIPELINES:
        for name, stage in stages_of(pipeline).items():
            for key in ("deps", "outs", "metrics", "plots"):
                for path in data_paths(stage.get(key, [])):
                    if "${" in path:  # a committee member's or audit fold's own folder (paths.TrainOutputs, AuditFold)
                        continue
                    assert path in declared, f"{pipeline}: stage {name} names {path}, which mnist_dvc/config/paths.py does not declare"
