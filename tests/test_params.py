"""The params schema: the shipped params.yaml passes, and every kind of mistake is one clear line."""

import copy

import pytest
import yaml

from stages.lib.errors import UserError
from stages.lib.params import load_params, parse_params, with_settings


@pytest.fixture(scope="module")
def shipped(repo_root) -> dict:
    return yaml.safe_load((repo_root / "params.yaml").read_text())


def with_change(raw: dict, dotted: str, value) -> dict:
    return with_settings(raw, {dotted: value})


def test_shipped_params_are_valid(repo_root):
    train = load_params("train", repo_root / "params.yaml")
    assert train.model == "vgg_bn" and train.epochs >= 1


@pytest.mark.parametrize(
    ("dotted", "value", "message"),
    [
        ("train.epochs", 0, r"train\.epochs = 0: Input should be greater than or equal to 1"),
        ("train.epochs", "ten", r"train\.epochs = 'ten': Input should be a valid integer"),
        ("train.learning_rate", -0.1, r"train\.learning_rate = -0\.1: Input should be greater than 0"),
        ("train.model", "resnet9000", r"train\.model = 'resnet9000': Input should be 'vgg_bn'.*'knn'"),
        ("ambiguous.top_n", 0, r"ambiguous\.top_n = 0"),
        ("preprocess.val_size", 60_000, r"preprocess: val_size = 60000 leaves too few training images"),
        ("committee.seeds", [1, 1], r"committee: seeds = \[1, 1\]: each member must differ"),
        ("committee.seeds", [], r"committee\.seeds = \[\]: List should have at least 1 item"),
        ("committee.models", ["vgg_bn", "lenet"], r"committee\.models\.1 = 'lenet': Input should be 'vgg_bn'"),
        ("preprocess.deskew", "yes", r"preprocess\.deskew = 'yes': Input should be a valid boolean"),
        ("preprocess.seed", -1, r"preprocess\.seed = -1"),
    ],
)
def test_bad_values_name_key_value_and_rule(shipped, dotted, value, message):
    with pytest.raises(UserError, match=rf"^params\.yaml: {message}"):
        parse_params(with_change(shipped, dotted, value))


def test_a_typo_is_an_unknown_key_and_lists_the_allowed_ones(shipped):
    raw = with_change(shipped, "train.epoch", 3)
    with pytest.raises(UserError, match=r"train\.epoch: unknown key \(allowed here: model, width, epochs"):
        parse_params(raw)


def test_a_missing_section_is_named(shipped):
    raw = copy.deepcopy(shipped)
    del raw["evaluate"]
    with pytest.raises(UserError, match=r"evaluate: missing"):
        parse_params(raw)


def test_every_problem_is_reported_on_one_line(shipped):
    raw = with_change(with_change(shipped, "train.epochs", 0), "ambiguous.top_n", -1)
    with pytest.raises(UserError) as error:
        parse_params(raw)
    assert "\n" not in str(error.value)
    assert "train.epochs" in str(error.value) and "ambiguous.top_n" in str(error.value)


def test_settings_change_a_copy_and_reach_nested_keys(shipped):
    before = copy.deepcopy(shipped)
    changed = with_settings(shipped, {"train.epochs": 2, "preprocess.augment.copies": 0, "committee.seeds": [4, 5]})
    assert shipped == before  # the loaded params themselves are left alone
    params = parse_params(changed)
    assert (params.train.epochs, params.preprocess.augment.copies, params.committee.seeds) == (2, 0, [4, 5])
    assert parse_params(shipped).train.epochs == shipped["train"]["epochs"]


def test_a_setting_for_a_key_that_does_not_exist_is_added_for_the_schema_to_reject(shipped):
    with pytest.raises(UserError, match=r"train\.augment\.rotation: unknown key \(allowed here: rotation_deg"):
        parse_params(with_settings(shipped, {"train.augment.rotation": 5.0}))
    with pytest.raises(UserError, match=r"trian: unknown key"):
        parse_params(with_settings(shipped, {"trian.epochs": 5}))


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_params("train", tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("train: [unclosed")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params("train", tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("- a list\n")
    with pytest.raises(UserError, match="expected a mapping of sections"):
        load_params("train", tmp_path / "params.yaml")
