"""The vote stage on real members trained by the train stage (who the members are and how they
vote is tests/unit/analysis/test_committee.py's)."""

import json
import shutil

import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz
from stages import train as train_stage
from stages import vote


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, mnist_train, edit_params):
    """A folder with a small real data/prepared and params.yaml naming two quick members."""
    images, labels = mnist_train
    prepared = tmp_path / "data/prepared"
    save_npz(prepared / "train.npz", images=images[:1000], labels=labels[:1000])
    save_npz(prepared / "val.npz", images=images[1000:1100], labels=labels[1000:1100])
    test = slice(1100, 1300)
    save_npz(prepared / "test.npz", images=images[test], labels=labels[test], original=images[test], index=np.arange(200))
    (prepared / "preparation.json").write_text('{"deskew": false}')
    shutil.copy(repo_root / "params.yaml", tmp_path)
    edit_params(tmp_path, {"train.epochs": 2, "train.batch_size": 32,
                           "committee.models": ["knn", "flat_mlp"], "committee.seeds": [7], "committee.tta": False})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_stage_scores_members_trained_by_the_train_stage(project, edit_params):
    for name in ("knn-7", "flat_mlp-7"):
        model, seed = name.split("-")
        train_stage.main(["--model", model, "--seed", seed, "--out", f"data/committee/{name}"])
        assert json.loads((project / f"data/committee/{name}/model/model.json").read_text())["model"] == model
    assert not (project / "data/model").exists() and not (project / "eval/train.json").exists()

    vote.main()
    scores = json.loads((project / "eval/committee.json").read_text())
    assert set(scores["members"]) == {"knn-7", "flat_mlp-7"}
    assert 0.5 < scores["accuracy"] <= 1 and scores["errors"] == round((1 - scores["accuracy"]) * 200)

    edit_params(project, {"committee.tta": True})
    vote.main()
    with_tta = json.loads((project / "eval/committee.json").read_text())
    assert with_tta["members"] != scores["members"]  # every member now also predicts the shifted digits

    edit_params(project, {"committee.models": ["knn"], "committee.tta": False})
    vote.main()  # the folder of flat_mlp-7 is still there, but it is no longer a member
    alone = json.loads((project / "eval/committee.json").read_text())
    assert alone["members"] == {"knn-7": scores["members"]["knn-7"]} and alone["accuracy"] == alone["members"]["knn-7"]


def test_a_member_missing_from_its_folder_is_named(project):
    with pytest.raises(UserError, match=r"data/committee/knn-7/model/model.json: not found"):
        vote.main()
