"""The ablation benchmark: its variants are valid params, and it scores a really trained model
with test-time augmentation."""

import shutil

import pytest

from bench.ablation import BASE, VARIANTS, tta_scores, variant_changes
from bench.pipeline import override
from bench.time_to_accuracy import train_and_score
from mnist_dvc.config.params import load_params


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_applies_to_params_yaml_and_validates(name, repo_root, tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(repo_root / "params.yaml", params)
    override(params, [*BASE, "train.epochs=4", *variant_changes(name, 4)])
    load_params("preprocess", params)
    train = load_params("train", params)
    assert train.epochs == (2 if "preprocess.augment.copies=1" in VARIANTS[name] else 4)  # same number of steps


def test_a_trained_model_is_scored_with_and_without_shifted_views(mnist_train, train_params):
    images, labels = mnist_train
    cfg = train_params(model="flat_mlp", epochs=2, batch_size=50)
    train, test = (images[:1000], labels[:1000]), (images[1000:1500], labels[1000:1500])

    run = train_and_score(cfg, train, test, target=0.5, eval_every=1000, finish=tta_scores(test))
    assert 0.5 < run["tta_test_accuracy"] <= 1.0 and run["tta_test_accuracy"] != run["final_test_accuracy"]
