"""The frontier benchmark: its recipes are valid params, the pipelines' points add up the right
seconds, and really trained runs come out as a table in time order and a plot."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from bench.ablation import tta_scores
from bench.frontier import RECIPES, pipeline_points, recipe_settings, write
from bench.pipeline import machine, override, summary
from bench.time_to_accuracy import train_and_score
from mnist_dvc.config.params import load_params


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_applies_to_params_yaml_and_validates(name, repo_root, tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(repo_root / "params.yaml", params)
    override(params, recipe_settings(name))
    load_params("train", params)


def test_the_pipelines_points_add_up_every_training_they_needed(repo_root, tmp_path, edit_params):
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval/committee.json").write_text(json.dumps({"accuracy": 0.9971, "members": {"vgg_bn-1": 0.995, "vgg_bn-2": 0.996}}))
    (tmp_path / "eval/retrain.json").write_text(json.dumps({"test": {"accuracy": 0.9965}, "training": {"train_seconds": 100.0}}))
    for name, seconds in (("vgg_bn-1", 200.0), ("vgg_bn-2", 210.5)):
        (tmp_path / f"data/committee/{name}").mkdir(parents=True)
        (tmp_path / f"data/committee/{name}/train.json").write_text(json.dumps({"train_seconds": seconds}))
    edit_params(tmp_path, {"audit.folds": [0, 1, 2]})
    for fold in range(3):
        (tmp_path / f"data/audit/folds/fold-{fold}").mkdir(parents=True)
        pd.DataFrame({"epoch": [1, 2], "seconds": [10.0, 5.0]}).to_csv(tmp_path / f"data/audit/folds/fold-{fold}/train_history.csv")

    committee, second = pipeline_points(tmp_path)
    assert (committee["name"], committee["test_accuracy"], committee["train_seconds"]) == ("committee", 0.9971, 410.5)
    assert (second["name"], second["test_accuracy"], second["train_seconds"]) == ("second training", 0.9965, 145.0)
    assert committee["tta"] is yaml.safe_load((repo_root / "params.yaml").read_text())["committee"]["tta"] and second["tta"] is False


def test_trained_runs_become_a_table_in_time_order_and_a_plot(mnist_train, train_params, tmp_path):
    images, labels = mnist_train
    train, test = (images[:1000], labels[:1000]), (images[1000:1500], labels[1000:1500])
    recipes = []
    for name, epochs in (("longer", 3), ("shorter", 1)):
        runs = [train_and_score(train_params(model="flat_mlp", epochs=epochs, batch_size=50, seed=seed), train, test, 0.5, 10**9,
                                tta_scores(test)) for seed in (0, 1)]
        recipes.append({"name": name, "settings": [f"train.epochs={epochs}"], "runs": runs,
                        **{key: summary([run[key] for run in runs]) for key in ("final_test_accuracy", "tta_test_accuracy", "train_seconds")}})
    result = {"machine": machine(), "recipes": recipes,
              "pipelines": [{"name": "committee", "settings": [], "test_accuracy": 0.99, "tta": True, "train_seconds": 1e4}]}

    write(tmp_path / "frontier", result)
    table = (tmp_path / "frontier.md").read_text().splitlines()
    by_time = [row["name"] for row in sorted(recipes, key=lambda row: row["train_seconds"]["median"])]
    assert [line.split("|")[1].strip() for line in table[2:]] == [*by_time, "committee"]
    assert json.loads((tmp_path / "frontier.json").read_text())["recipes"][0]["name"] == "longer"
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
