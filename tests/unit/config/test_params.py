"""The params schema: the shipped params.yaml passes, and every kind of mistake is one clear line."""

import copy

import pytest
import yaml

from mnist_dvc.config.params import check_train_fits, load_params, parse_params
from mnist_dvc.config.settings import with_settings
from mnist_dvc.errors import UserError


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
        ("audit.folds", [0], r"audit\.folds = \[0\]: cross-validation needs at least 2 folds"),
        ("audit.folds", 5, r"audit\.folds = 5: list the fold numbers, e\.g\. \[0, 1, 2, 3, 4\]: DVC's matrix iterates over a list"),
        ("audit.folds", [0, 2], r"audit\.folds = \[0, 2\]: list the fold numbers 0, 1, \.\.\., K-1 for K folds"),
        ("audit.top_n", -1, r"audit\.top_n = -1: Input should be greater than or equal to 1"),
        ("audit.epochs", 0, r"audit\.epochs = 0: Input should be greater than or equal to 1"),
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


# --- train keys that only the data can check (check_train_fits) ---------------------------------


def baseline(train_params, model: str, **classical):
    cfg = train_params(model=model)
    return cfg.model_copy(update={"classical": cfg.classical.model_copy(update=classical)})


@pytest.mark.parametrize(
    "model, classical, n_images, message",
    [
        ("svc", {"pca_components": 20}, 10, r"train\.classical\.pca_components = 20: at most min\(training images, 784\) = 10 components exist"),
        ("knn", {"pca_components": 5, "knn_neighbors": 30}, 20, r"train\.classical\.knn_neighbors = 30: only 20 training images"),
    ],
)
def test_a_baseline_asking_more_of_the_data_than_it_holds_is_a_user_error(train_params, model, classical, n_images, message):
    with pytest.raises(UserError, match=rf"^params\.yaml: {message}$"):
        check_train_fits(baseline(train_params, model, **classical), n_images, 1)


def test_a_baseline_may_use_all_the_data_holds(train_params):
    check_train_fits(baseline(train_params, "knn", pca_components=20, knn_neighbors=20), 20, 1)
    check_train_fits(baseline(train_params, "svc", pca_components=784, knn_neighbors=50), 1000, 1)  # svc has no neighbours


def test_a_batch_must_fit_the_data_and_split_evenly_over_the_devices(train_params):
    with pytest.raises(UserError, match=r"^params\.yaml: train\.batch_size = 1024 is larger than the 512 training images$"):
        check_train_fits(train_params(batch_size=1024), 512, 1)
    with pytest.raises(UserError, match=r"^params\.yaml: train\.batch_size = 30 must be a multiple of the 4 devices JAX sees"):
        check_train_fits(train_params(batch_size=30), 512, 4)
    check_train_fits(train_params(batch_size=32), 512, 4)
