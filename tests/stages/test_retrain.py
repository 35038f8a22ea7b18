"""The second training stage on a small real slice: it reads the audit's tables, trains on the set
they change, scores the test set, and stops with the file and the command when a table is missing
or was made for other digits."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz, write_json
from stages import retrain as retrain_stage

TRAIN, VAL, TEST = 600, 100, 200
FLAGGED, FLAGGED_TEST = [3, 50, 400], [TRAIN + VAL + 7]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, mnist_train):
    """data/prepared as the preprocess stage writes it (no deskewing here), and the audit's tables
    for those digits: three training digits flagged, every digit's label quality, one test digit flagged."""
    folder = tmp_path_factory.mktemp("retrain")
    images, labels = mnist_train
    prepared = folder / "data" / "prepared"
    save_npz(prepared / "train.npz", images=images[:TRAIN], labels=labels[:TRAIN], index=np.arange(TRAIN, dtype=np.int64))
    save_npz(prepared / "val.npz", images=images[TRAIN : TRAIN + VAL], labels=labels[TRAIN : TRAIN + VAL],
             index=np.arange(TRAIN, TRAIN + VAL, dtype=np.int64))
    test = slice(TRAIN + VAL, TRAIN + VAL + TEST)
    save_npz(prepared / "test.npz", images=images[test], labels=labels[test], original=images[test], index=np.arange(TRAIN + VAL, TRAIN + VAL + TEST))
    write_json(prepared / "preparation.json", {"deskew": False, "stroke_width": None})
    quality = np.linspace(0.5, 1.0, TRAIN + VAL)
    audit = folder / "data" / "audit"
    for split in ("train", "test"):
        (audit / split).mkdir(parents=True)
    pd.DataFrame({"index": np.arange(TRAIN + VAL), "given_label": labels[: TRAIN + VAL], "suggested_label": labels[: TRAIN + VAL],
                  "label_quality": quality}).to_csv(audit / "train" / "quality.csv", index=False)
    pd.DataFrame({"split": "train", "index": FLAGGED, "given_label": labels[FLAGGED], "suggested_label": 0,
                  "label_quality": 0.001, "rank": [1, 2, 3]}).to_csv(audit / "train" / "issues.csv", index=False)
    pd.DataFrame({"split": "test", "index": FLAGGED_TEST, "given_label": labels[FLAGGED_TEST], "suggested_label": 0,
                  "label_quality": 0.001, "rank": [1]}).to_csv(audit / "test" / "issues.csv", index=False)
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, prepared, edit_params):
    shutil.copytree(prepared, tmp_path, dirs_exist_ok=True)
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    edit_params(tmp_path, {"train.width": 8, "train.epochs": 3, "train.batch_size": 50, "train.schedule": "constant", "train.learning_rate": 0.01,
                           "retrain.exclude_label_issues": True, "retrain.hard_digits": 20, "retrain.hard_copies": 2})
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_second_training_learns_from_the_audit_and_scores_the_test_set(project, capsys):
    retrain_stage.main()
    metrics = json.loads(paths.RETRAIN_JSON.read_text())
    assert {key: metrics[key] for key in ("left_out_digits", "left_out_images", "oversampled_digits", "added_images", "training_images")} == {
        "left_out_digits": 3, "left_out_images": 3, "oversampled_digits": 20, "added_images": 40, "training_images": TRAIN - 3 + 40}
    test = metrics["test"]
    assert test["label_issues"] == 1 and test["label_issues_predicted_otherwise"] in (0, 1)
    assert test["accuracy"] > 0.3 and test["errors"] == round((1 - test["accuracy"]) * TEST)  # 3 short epochs of a narrow CNN; 10% is chance
    assert (paths.RETRAIN.model / "model.json").is_file() and paths.RETRAIN.checkpoint.is_file()
    assert len(pd.read_csv(paths.RETRAIN.history)) == 3 and metrics["training"] == json.loads(paths.RETRAIN.metrics.read_text())
    assert "3 images of 3 flagged digits left out, 40 distorted copies of the 20 hardest added: 637 training images" in capsys.readouterr().out


def test_without_the_audit_or_with_another_one_it_names_the_file_and_the_command(project, edit_params):
    (project / paths.AUDIT_TEST_ISSUES).unlink()
    with pytest.raises(UserError, match=r"^data/audit/test/issues\.csv: not found; run the label audit first: dvc repro audit/dvc\.yaml$"):
        retrain_stage.main()
    quality = pd.read_csv(project / paths.AUDIT_TRAIN_QUALITY)
    quality.iloc[:300].to_csv(project / paths.AUDIT_TRAIN_QUALITY, index=False)  # an audit of preprocess.train_subset = 300
    with pytest.raises(UserError, match=r"^data/audit/train/quality\.csv: made for other training digits than data/prepared/train\.npz"):
        retrain_stage.main()
    assert not paths.RETRAIN_JSON.exists() and not paths.RETRAIN.model.exists()


@pytest.mark.parametrize(("broken", "message"), [
    (lambda table: table.drop(columns="label_quality"), r"missing column\(s\) label_quality"),
    (lambda table: pd.concat([table, table.iloc[:1]]), r"a digit appears twice"),
], ids=["missing column", "digit twice"])
def test_an_unusable_audit_table_names_the_file_what_is_wrong_and_the_command(project, broken, message):
    broken(pd.read_csv(project / paths.AUDIT_TRAIN_QUALITY)).to_csv(project / paths.AUDIT_TRAIN_QUALITY, index=False)
    with pytest.raises(UserError, match=rf"^data/audit/train/quality\.csv: {message}; run the label audit first: dvc repro audit/dvc\.yaml$"):
        retrain_stage.main()


def test_other_digits_name_the_training_set_and_the_key_that_may_differ(project):
    quality = pd.read_csv(project / paths.AUDIT_TRAIN_QUALITY)
    quality.iloc[1:].to_csv(project / paths.AUDIT_TRAIN_QUALITY, index=False)
    with pytest.raises(UserError, match=r"^data/audit/train/quality\.csv: made for other training digits than data/prepared/train\.npz "
                                        r"\(training digit 0 is not in it; another preprocess\.train_subset\?\); "
                                        r"run the label audit first: dvc repro audit/dvc\.yaml$"):
        retrain_stage.main()


def test_a_diverging_second_training_names_the_retrain_stage_and_the_learning_rate(project, edit_params):
    edit_params(project, {"train.model": "flat_mlp", "train.optimizer": "sgd", "train.learning_rate": 10.0, "train.label_smoothing": 0.0})
    with pytest.raises(UserError, match=r"^retrain: the loss became (nan|inf) at epoch 1, step \d+; "
                                        r"lower train\.learning_rate \(now 10\.0\); the checkpoint of the last good epoch is kept$"):
        retrain_stage.main()
    assert not paths.RETRAIN_JSON.exists() and not paths.RETRAIN.model.exists()


def test_more_hard_digits_than_there_are_names_the_key(project, edit_params):
    edit_params(project, {"retrain.hard_digits": TRAIN})
    with pytest.raises(UserError, match=r"^params\.yaml: retrain\.hard_digits = 600: only 597 training digits are not flagged$"):
        retrain_stage.main()


def test_the_second_training_takes_the_reviewed_labels_of_the_prepared_set_and_an_audit_of_the_same(project, capsys):
    """With a person's verdicts applied, train.npz holds a corrected label (and no digit judged
    ambiguous); an audit made on the same labels is used as it is, one made on the official labels
    is refused as made for other digits, so the second training never trains on a label a person overruled."""
    with np.load(paths.TRAIN_NPZ) as train:
        arrays = dict(train)
    corrected = (int(arrays["labels"][10]) + 1) % 10
    arrays["labels"][10] = corrected
    keep = arrays["index"] != 20  # digit 20 judged ambiguous: left out by preprocess
    save_npz(paths.TRAIN_NPZ, images=arrays["images"][keep], labels=arrays["labels"][keep], index=arrays["index"][keep])
    with pytest.raises(UserError, match=r"^data/audit/train/quality\.csv: made for other training digits than data/prepared/train\.npz "
                                        r"\(its given labels differ"):
        retrain_stage.main()
    quality = pd.read_csv(paths.AUDIT_TRAIN_QUALITY)
    quality.loc[quality["index"] == 10, "given_label"] = corrected
    quality[quality["index"] != 20].to_csv(paths.AUDIT_TRAIN_QUALITY, index=False)
    retrain_stage.main()
    assert json.loads(paths.RETRAIN_JSON.read_text())["training_images"] == TRAIN - 1 - 3 + 40
