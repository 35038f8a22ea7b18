"""The model comparison benchmark: every model of the project has its originally reported accuracy
quoted, and its results (the README's table and the JSON of every run) are written whole."""

import json

import pytest

from bench.compare_models import REPORTED, write
from mnist_dvc.config.params import CLASSICAL_MODELS, NEURAL_MODELS

ROWS = [
    {"model": "kaggle_cnn", "setting": "deskew+aug", "parameters": 887_530, "epochs": 2, "train_seconds": 100.4,
     "wall_seconds": 130.2, "test_accuracy": 0.9912, "reported": REPORTED["kaggle_cnn"]},
    {"model": "knn", "setting": "plain", "parameters": None, "epochs": None, "train_seconds": 1.2,
     "wall_seconds": 25.0, "test_accuracy": 0.9765, "reported": REPORTED["knn"]},
]


def test_every_model_of_the_project_has_its_reported_accuracy_and_no_other():
    assert sorted(REPORTED) == sorted(NEURAL_MODELS + CLASSICAL_MODELS)


def test_writes_the_readme_table_and_every_run(tmp_path):
    out = tmp_path / "results" / "models-cpu"
    write(out, "python bench/compare_models.py --epochs 2", ROWS)

    header, _, *lines = out.with_suffix(".md").read_text().splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert [cell.strip() for cell in header.strip("|").split("|")][0] == "model"
    assert cells == [
        ["kaggle_cnn", "887,530", "yes", "shift ±2 px", "2", "130", "100", "99.12%", REPORTED["kaggle_cnn"]],
        ["knn", "-", "no", "none", "-", "25", "1", "97.65%", REPORTED["knn"]],
    ]
    saved = out.with_suffix(".json").read_text()
    assert saved.endswith("}\n") and saved.startswith('{\n  "command": ')  # laid out as every results file
    assert json.loads(saved)["rows"] == ROWS


def test_a_result_that_cannot_be_written_leaves_the_last_results_as_they_were(tmp_path):
    out = tmp_path / "models-cpu"
    write(out, "first", ROWS)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with pytest.raises(TypeError):
        write(out, "second", [*ROWS, {**ROWS[0], "reported": object()}])  # not JSON
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
