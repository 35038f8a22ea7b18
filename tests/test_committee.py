"""The committee's vote: member names, probability averaging, and the stage on real trained members."""

import json

import numpy as np
import pytest
import yaml

from stages import committee
from stages import train as train_stage
from stages.atomic import save_npz
from stages.errors import UserError
from stages.params import Committee


def test_members_are_every_model_with_every_seed_named_as_the_dvc_matrix_names_them():
    cfg = Committee(models=["vgg_bn", "knn"], seeds=[1, 2], tta=False)
    assert committee.member_names(cfg) == ["vgg_bn-1", "vgg_bn-2", "knn-1", "knn-2"]


def ten_classes(probs: np.ndarray) -> np.ndarray:
    """Two-class probabilities as ten-class ones, digits 2-9 never chosen."""
    return np.pad(probs, ((0, 0), (0, 8)))


def test_the_vote_averages_probabilities_so_a_confident_member_outweighs_two_unsure_ones():
    labels = np.array([0, 1])
    sure = np.array([[0.9, 0.1], [0.1, 0.9]])
    unsure_wrong = np.array([[0.45, 0.55], [0.1, 0.9]])
    members = {"a-1": ten_classes(sure), "b-1": ten_classes(unsure_wrong), "c-1": ten_classes(unsure_wrong)}
    scores = committee.vote(members, labels)
    assert scores["accuracy"] == 1.0 and scores["errors"] == 0  # a majority vote would get digit 0 wrong
    assert scores["members"] == {"a-1": 1.0, "b-1": 0.5, "c-1": 0.5}
    assert scores["member_accuracy_median"] == 0.5


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, mnist_train):
    """A folder with a small real data/prepared and params.yaml naming two quick members."""
    images, labels = mnist_train
    prepared = tmp_path / "data/prepared"
    save_npz(prepared / "train.npz", images=images[:1000], labels=labels[:1000])
    save_npz(prepared / "val.npz", images=images[1000:1100], labels=labels[1000:1100])
    test = slice(1100, 1300)
    save_npz(prepared / "test.npz", images=images[test], labels=labels[test], original=images[test], index=np.arange(200))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["train"].update(epochs=2, batch_size=32)
    params["committee"] = {"models": ["knn", "flat_mlp"], "seeds": [7], "tta": False}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_stage_scores_members_trained_by_the_train_stage(project, edit_params):
    for name in ("knn-7", "flat_mlp-7"):
        model, seed = name.split("-")
        train_stage.main(["--model", model, "--seed", seed, "--out", f"data/committee/{name}"])
        assert json.loads((project / f"data/committee/{name}/model/model.json").read_text())["model"] == model
    assert not (project / "data/model").exists() and not (project / "eval/train.json").exists()

    committee.main()
    scores = json.loads((project / "eval/committee.json").read_text())
    assert set(scores["members"]) == {"knn-7", "flat_mlp-7"}
    assert 0.5 < scores["accuracy"] <= 1 and scores["errors"] == round((1 - scores["accuracy"]) * 200)

    edit_params(project, {"committee.tta": True})
    committee.main()
    with_tta = json.loads((project / "eval/committee.json").read_text())
    assert with_tta["members"] != scores["members"]  # every member now also predicts the shifted digits


def test_a_member_missing_from_its_folder_is_named(project):
    with pytest.raises(UserError, match=r"data/committee/knn-7/model/model.json: not found"):
        committee.main()
