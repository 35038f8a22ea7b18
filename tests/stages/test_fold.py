"""The audit's fold stage on a small real slice: what one fold writes, that a finished fold resumes
to the same result instead of training again, and the params only the data can check.
(How digits are split into folds is tests/stages/test_audit.py's; the training loop is tests/unit/training/test_loop.py's.)"""

import numpy as np
import pytest

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz, write_json
from mnist_dvc.io.stage_outputs import read_npz
from stages import fold as fold_stage

TRAIN_DIGITS = 600
TEST_DIGITS = 100


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, mnist_mirror, mnist_train, edit_params):
    """A working folder with data/raw, what preprocess would have written (train_labels.npz: the
    official labels, no verdict), and a params.yaml for a quick audit of the first 600 training
    digits; returns a function that edits those params (and writes train_labels.npz for the subset)."""
    raw = tmp_path / paths.RAW
    raw.mkdir(parents=True)
    for path in (paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS):
        (raw / path.name).symlink_to(mnist_mirror / path.name)
    images, labels = mnist_train
    test = slice(TRAIN_DIGITS, TRAIN_DIGITS + TEST_DIGITS)  # stands in for the test set: never trained on here
    save_npz(tmp_path / paths.TEST_NPZ, images=images[test], labels=labels[test], original=images[test],
             index=np.arange(TEST_DIGITS))
    write_json(tmp_path / paths.PREPARATION_JSON, {"deskew": True, "stroke_width": None})
    (tmp_path / "params.yaml").write_text((repo_root / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)

    def configure(**changes):
        settings = {"preprocess.train_subset": TRAIN_DIGITS, "preprocess.val_size": 10, "train.width": 8, "train.batch_size": 16,
                    "train.schedule": "constant", "train.learning_rate": 0.01, "audit.folds": [0, 1], "audit.epochs": 1, **changes}
        edit_params(tmp_path, settings)
        subset = settings["preprocess.train_subset"]
        save_npz(tmp_path / paths.TRAIN_LABELS_NPZ, index=np.arange(subset), labels=labels[:subset].astype(np.int64))

    configure()
    return configure


def test_a_fold_predicts_its_held_out_digits_and_the_test_set_then_resumes_instead_of_retraining(project, mnist_train, capsys):
    fold_stage.main(["1"])
    out = paths.AuditFold.number(1)
    first = read_npz(out.probs, ("positions", "labels", "probs", "test_probs"), "fold")
    positions = first["positions"]
    assert 250 < len(positions) < 350 and np.all(np.diff(positions) > 0) and positions.max() < TRAIN_DIGITS
    np.testing.assert_array_equal(first["labels"], mnist_train[1][positions])
    assert first["probs"].shape == (len(positions), 10) and first["test_probs"].shape == (TEST_DIGITS, 10)
    np.testing.assert_allclose(first["probs"].sum(axis=1), 1, atol=1e-5)
    assert out.checkpoint.is_file() and out.history.read_text().splitlines()[1].startswith("1,")
    assert "resuming" not in capsys.readouterr().out

    fold_stage.main(["1"])  # as after a kill at the very end: nothing left to train
    assert "resuming after epoch 1" in capsys.readouterr().out
    again = read_npz(out.probs, ("positions", "probs", "test_probs"), "fold")
    for key in again:
        np.testing.assert_array_equal(again[key], first[key])

    project(**{"audit.seed": 1})  # other folds: the checkpoint is not this run's
    fold_stage.main(["1"])
    assert "ignoring" in capsys.readouterr().out
    assert not np.array_equal(read_npz(out.probs, ("positions",), "fold")["positions"], positions)


def test_a_fold_trains_on_the_labels_training_uses_without_the_digits_left_out(project, mnist_train, capsys):
    """With a person's verdicts applied (train_labels.npz: one label corrected, one digit judged
    ambiguous), the folds split the digits left, keep naming them by their place in the official
    file, and give them the corrected labels; a checkpoint made with the official labels is not resumed."""
    fold_stage.main(["0"])
    official = mnist_train[1][:TRAIN_DIGITS].astype(np.int64)
    labels = official.copy()
    labels[[5, 17]] = [(labels[5] + 1) % 10, -1]
    save_npz(paths.TRAIN_LABELS_NPZ, index=np.arange(TRAIN_DIGITS), labels=labels)
    capsys.readouterr()
    for fold in (0, 1):
        fold_stage.main([str(fold)])
    assert "ignoring" in capsys.readouterr().out
    folds = [read_npz(paths.AuditFold.number(fold).probs, ("positions", "labels"), "fold") for fold in (0, 1)]
    positions = np.concatenate([fold["positions"] for fold in folds])
    assert sorted(positions.tolist()) == [i for i in range(TRAIN_DIGITS) if i != 17]
    np.testing.assert_array_equal(np.concatenate([fold["labels"] for fold in folds]), labels[positions])
    assert (labels[positions] != official[positions]).sum() == 1


def test_labels_made_for_another_subset_name_the_preprocess_stage(project):
    save_npz(paths.TRAIN_LABELS_NPZ, index=np.arange(TRAIN_DIGITS - 1), labels=np.zeros(TRAIN_DIGITS - 1, np.int64))
    with pytest.raises(UserError, match=r"^data/prepared/train_labels\.npz: made for other training digits than the first 600 of "
                                        r"data/raw/train-images-idx3-ubyte\.gz; rerun the preprocess stage \(dvc repro\)$"):
        fold_stage.main(["0"])
    assert not paths.AUDIT.exists()


def test_more_folds_than_digits_of_the_rarest_label_is_named(project):
    project(**{"preprocess.train_subset": 30, "audit.folds": list(range(5))})  # the first 30 hold a single 8
    with pytest.raises(UserError, match=r"^params\.yaml: audit\.folds = \[0, 1, 2, 3, 4\] \(5 folds\) for the 30 training "
                                        r"digits \(preprocess\.train_subset = 30\): 5 folds need at least 5 digits of every "
                                        r"class; the rarest has 1$"):
        fold_stage.main(["0"])
    assert not paths.AUDIT.exists()


def test_a_single_fold_is_refused_by_the_schema(project):
    project(**{"audit.folds": [0]})
    with pytest.raises(UserError, match=r"^params\.yaml: audit\.folds = \[0\]: cross-validation needs at least 2 folds"):
        fold_stage.main(["0"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"train.model": "knn"}, r"^params\.yaml: train\.model = knn: the audit trains networks only"),
    ({"train.batch_size": 512}, r"^params\.yaml: train\.batch_size = 512 is larger than the \d+ training images"),
])
def test_train_settings_the_audit_cannot_use_are_named(project, changes, message):
    project(**changes)
    with pytest.raises(UserError, match=message):
        fold_stage.main(["0"])


def test_a_fold_outside_the_list_is_named(project):
    with pytest.raises(UserError, match=r"^fold 2: not one of params\.yaml's audit\.folds = \[0, 1\]"):
        fold_stage.main(["2"])



def test_a_diverging_fold_names_the_learning_rate(project):
    project(**{"train.model": "flat_mlp", "train.optimizer": "sgd", "train.learning_rate": 10.0, "train.label_smoothing": 0.0})
    with pytest.raises(UserError, match=r"^fold 0: the loss became (nan|inf) at epoch 1, step \d+; lower train\.learning_rate \(now 10\.0\); "
                                        r"the checkpoint of the last good epoch is kept$"):
        fold_stage.main(["0"])
    assert not paths.AuditFold.number(0).probs.exists()
