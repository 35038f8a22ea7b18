"""The evaluate stage run for real in a temporary folder: on an untrained (freshly initialised)
network, and on a small k-nearest-neighbours model fitted to real MNIST digits for calibration."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flax import nnx
from import_graph import import_closure
from PIL import Image

from mnist_dvc.analysis.calibration import apply_temperature, expected_calibration_error, fit_temperature, logits_from_probs
from mnist_dvc.analysis.metrics import summarize
from mnist_dvc.errors import UserError
from mnist_dvc.io import checkpoint
from mnist_dvc.models import classical
from mnist_dvc.models.inference import predict_proba
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import load_classifier, save_classical
from stages import evaluate

N = 40
VAL = 20
TEST_INDEX = np.arange(N, dtype=np.int64)
HEADLINE = {"accuracy", "loss", "errors", "macro_f1"}
CALIBRATION = {"temperature", "ece_before", "ece_after", "loss_calibrated"}
REVIEWED = {"reviewed_accuracy", "reviewed_digits", "test_verdicts"}
RELIABILITY_COLUMNS = ["probabilities", "bin_lower", "bin_upper", "confidence", "accuracy", "count"]


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, edit_params):
    """params.yaml (batch 16, 3 examples, one view per digit: TTA off), a 40-digit test.npz and its test_verdicts.npz (no verdict),
a 20-digit val.npz and an untrained flat_mlp.

flat_mlp because it initialises in seconds on a CPU; the convolutional models take much longer.
"""
    shutil.copy(repo_root / "params.yaml", tmp_path)
    edit_params(tmp_path, {"evaluate.batch_size": 16, "evaluate.examples": 3, "evaluate.tta": False})
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    labels = (np.arange(N) % 10).astype(np.uint8)
    (tmp_path / "data/prepared").mkdir(parents=True)
    np.savez(tmp_path / "data/prepared/test.npz", images=images, labels=labels, original=255 - images, index=TEST_INDEX)
    np.savez(tmp_path / "data/prepared/test_verdicts.npz", index=TEST_INDEX, labels=labels.astype(np.int64), verdicts=np.int64(0))
    np.savez(tmp_path / "data/prepared/val.npz", images=rng.integers(0, 256, size=(VAL, 28, 28), dtype=np.uint8),
             labels=(np.arange(VAL) % 10).astype(np.uint8))
    model = build_model("flat_mlp", width=32, rngs=init_rngs(0))
    checkpoint.save(tmp_path / "data/model/model.msgpack", nnx.state(model), {"model": "flat_mlp", "width": 32})
    (tmp_path / "data/model/model.json").write_text(json.dumps({"model": "flat_mlp", "width": 32}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_writes_metrics_per_digit_speed_confusion_probs_and_examples(project, capsys):
    evaluate.main()
    metrics = json.loads((project / "eval/metrics.json").read_text())
    assert set(metrics) == HEADLINE | CALIBRATION | REVIEWED
    # Without a verdict the reviewed labels are the official ones.
    assert (metrics["reviewed_accuracy"], metrics["reviewed_digits"], metrics["test_verdicts"]) == (metrics["accuracy"], N, 0)

    per_digit = pd.read_csv(project / "eval/per_digit.csv")
    assert list(per_digit.columns) == ["digit", "precision", "recall", "f1", "support"]
    assert per_digit["digit"].tolist() == list(range(10))
    assert per_digit["support"].tolist() == [N // 10] * 10  # labels 0..9, four of each
    assert per_digit[["precision", "recall", "f1"]].stack().between(0, 1).all()

    speed = json.loads((project / "eval/speed.json").read_text())
    assert speed["test_images"] == N and speed["inference_images_per_second"] > 0 and speed["views_per_image"] == 1

    with np.load(project / "data/eval/probs.npz") as saved:
        probs, labels, index = saved["probs"], saved["labels"], saved["index"]
    assert probs.dtype == np.float32 and probs.shape == (N, 10)
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert labels.dtype == np.uint8 and index.dtype == np.int64 and index.tolist() == TEST_INDEX.tolist()
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    assert metrics["accuracy"] == round(accuracy, 6)
    assert metrics["errors"] == int((probs.argmax(axis=1) != labels).sum())

    confusion = pd.read_csv(project / "eval/confusion.csv")
    assert len(confusion) == N and list(confusion.columns) == ["actual", "predicted"]
    assert confusion["predicted"].tolist() == probs.argmax(axis=1).tolist()
    assert confusion["actual"].tolist() == labels.tolist()
    for row in per_digit.itertuples():  # recall of a digit: the share of its test digits predicted as it
        mine = confusion[confusion["actual"] == row.digit]
        assert row.recall == round(float((mine["predicted"] == row.digit).mean()), 6)

    examples = pd.read_csv(project / "data/eval/examples.csv")
    assert list(examples.columns) == list(evaluate.EXAMPLE_COLUMNS)
    right, wrong = int(examples["correct"].sum()), int((~examples["correct"]).sum())
    assert right <= 3 and wrong <= 3 and len(examples) == right + wrong > 0
    assert examples["correct"].is_monotonic_decreasing  # right ones first
    pngs = {p.name for p in (project / "data/eval/examples").iterdir()}
    assert pngs == {f"{index}.png" for index in examples["index"]}
    first = examples.iloc[0]
    with Image.open(project / f"data/eval/examples/{first['index']}.png") as image:
        original = np.load(project / "data/prepared/test.npz")["original"][int(first["index"])]
        assert np.array_equal(np.asarray(image)[::4, ::4], original)
    with Image.open(project / "data/eval/examples.png") as image:
        image.verify()
    assert "test accuracy" in capsys.readouterr().out


def test_the_temperature_fitted_on_the_validation_split_calibrates_the_saved_probabilities(project):
    evaluate.main()
    metrics = json.loads((project / "eval/metrics.json").read_text())
    classifier = load_classifier(project / "data/model")
    with np.load(project / "data/prepared/test.npz") as test, np.load(project / "data/prepared/val.npz") as val:
        raw, labels = predict_proba(classifier, test["images"], 16), test["labels"]
        temperature = fit_temperature(logits_from_probs(predict_proba(classifier, val["images"], 16)), val["labels"])
    assert metrics["temperature"] == round(temperature, 6) and temperature != pytest.approx(1, abs=1e-3)
    calibrated = np.load(project / "data/eval/probs.npz")["probs"]
    np.testing.assert_allclose(calibrated, apply_temperature(logits_from_probs(raw), temperature), atol=1e-6)
    assert not np.allclose(calibrated, raw, atol=1e-3)

    # The headline is the model's own: the raw probabilities' figures, which calibration does not change but the loss.
    assert {key: metrics[key] for key in HEADLINE} == summarize(raw, labels)
    assert {key: value for key, value in summarize(calibrated, labels).items() if key != "loss"} == \
        {key: metrics[key] for key in HEADLINE - {"loss"}}
    assert metrics["loss_calibrated"] == summarize(calibrated, labels)["loss"]
    assert metrics["ece_before"] == round(expected_calibration_error(raw, labels, 15), 6)
    assert metrics["ece_after"] == round(expected_calibration_error(calibrated, labels, 15), 6)

    reliability = pd.read_csv(project / "eval/reliability.csv")
    assert list(reliability.columns) == RELIABILITY_COLUMNS
    assert list(dict.fromkeys(reliability["probabilities"])) == ["raw", "calibrated"]  # raw rows first
    for _, table in reliability.groupby("probabilities"):
        assert table["count"].sum() == N and table["bin_lower"].is_monotonic_increasing
        assert ((table["confidence"] > table["bin_lower"]) | (table["bin_lower"] == 0)).all()
        assert (table["confidence"] <= table["bin_upper"]).all() and table["accuracy"].between(0, 1).all()


@pytest.fixture
def knn_project(project, mnist_train, edit_params):
    """The project with a k-nearest-neighbours model fitted on 2,000 real training digits, and 500
    validation and 1,000 test digits taken from the ones after them (never seen by the model),
    predicted in batches of 250 (each batch is one neighbour search)."""
    edit_params(project, {"evaluate.batch_size": 250})
    images, labels = mnist_train
    model = classical.fit("knn", images[:2000], labels[:2000], pca_components=30, svc_c=1.0, knn_neighbors=3, seed=0)
    for stale in (project / "data/model").iterdir():
        stale.unlink()
    save_classical(project / "data/model", model, "knn", {"deskew": False, "stroke_width": None})
    np.savez(project / "data/prepared/val.npz", images=images[2000:2500], labels=labels[2000:2500])
    np.savez(project / "data/prepared/test.npz", images=images[2500:3500], labels=labels[2500:3500],
             original=images[2500:3500], index=np.arange(1000, dtype=np.int64))
    np.savez(project / "data/prepared/test_verdicts.npz", index=np.arange(1000, dtype=np.int64), labels=labels[2500:3500].astype(np.int64),
             verdicts=np.int64(0))
    return project


def test_calibration_improves_a_real_knn_model_without_changing_its_predictions(knn_project):
    """k-nearest neighbours' probabilities are vote shares, mostly exactly 1 or 0 (logits_from_probs
    clips the zeros): overconfident, so the temperature softens them (T > 1) and the calibration
    error falls (0.051 -> 0.043 on these digits)."""
    evaluate.main()
    metrics = json.loads((knn_project / "eval/metrics.json").read_text())
    with np.load(knn_project / "data/eval/probs.npz") as saved:
        calibrated, labels = saved["probs"], saved["labels"]
    raw = predict_proba(load_classifier(knn_project / "data/model"), np.load(knn_project / "data/prepared/test.npz")["images"], 250)
    assert (raw == 0).mean() > 0.5 and np.isfinite(calibrated).all() and calibrated.min() > 0
    np.testing.assert_array_equal(calibrated.argmax(axis=1), raw.argmax(axis=1))
    assert metrics["accuracy"] == summarize(calibrated, labels)["accuracy"] > 0.9
    assert metrics["temperature"] > 1
    assert metrics["ece_after"] <= metrics["ece_before"]
    assert metrics["loss_calibrated"] < metrics["loss"]


def test_an_empty_validation_split_names_preprocess_val_size_and_writes_nothing(project):
    np.savez(project / "data/prepared/val.npz", images=np.zeros((0, 28, 28), np.uint8), labels=np.zeros(0, np.uint8))
    with pytest.raises(UserError, match=r"data/prepared/val.npz: cannot fit the calibration temperature .*preprocess.val_size"):
        evaluate.main()
    assert not (project / "eval").exists() and not (project / "data/eval").exists()


def test_a_missing_validation_split_names_the_preprocess_stage(project):
    (project / "data/prepared/val.npz").unlink()
    with pytest.raises(UserError, match=r"data/prepared/val.npz: not found; run the preprocess stage"):
        evaluate.main()


def test_metrics_are_byte_identical_across_runs(project):
    files = ("eval/metrics.json", "eval/per_digit.csv", "eval/confusion.csv", "eval/reliability.csv", "data/eval/examples.csv")
    evaluate.main()
    first = [(project / name).read_bytes() for name in files]
    evaluate.main()
    assert [(project / name).read_bytes() for name in files] == first


def test_test_time_augmentation_predicts_five_views_of_every_digit(project, edit_params):
    evaluate.main()
    plain = np.load(project / "data/eval/probs.npz")["probs"]
    edit_params(project, {"evaluate.tta": True})
    evaluate.main()
    assert json.loads((project / "eval/speed.json").read_text())["views_per_image"] == 5
    with np.load(project / "data/eval/probs.npz") as saved:
        assert saved["probs"].dtype == np.float32 and not np.allclose(saved["probs"], plain)


def test_missing_model_is_a_user_error(project):
    (project / "data/model/model.json").unlink()
    with pytest.raises(UserError, match="model.json: not found"):
        evaluate.main()


def test_a_bad_test_set_is_a_user_error_and_writes_nothing(project):
    """(Every check of test.npz is tests/unit/io/test_prepared_sets.py's.)"""
    np.savez(project / "data/prepared/test.npz", images=np.zeros((N, 28, 28), np.uint8), labels=np.zeros(N, np.uint8))
    with pytest.raises(UserError, match=r"test.npz: missing array\(s\) original, index; rerun the preprocess stage"):
        evaluate.main()
    assert not (project / "eval").exists() and not (project / "data/eval").exists()


def test_the_stage_does_not_depend_on_confident_learning():
    """It tables the model's answers (`answers.describe`) without the cleanlab wrapper that ranks
    label issues (`ambiguity`'s definitions), so editing that wrapper does not rerun it."""
    assert Path("mnist_dvc/analysis/label_issues.py") not in import_closure(Path("stages/evaluate.py"))


def test_the_reviewed_accuracy_scores_the_corrected_labels_without_the_unreadable_digits(project, capsys):
    """The headline stays against the official labels; the reviewed accuracy is against the labels
    after the verdicts, on the digits not judged unreadable, with the number of verdicts used."""
    with np.load(project / "data/prepared/test.npz") as test:
        official = test["labels"].astype(np.int64)
    evaluate.main()
    before = json.loads((project / "eval/metrics.json").read_text())
    predicted = np.load(project / "data/eval/probs.npz")["probs"].argmax(axis=1)
    right, wrong = np.flatnonzero(predicted == official), np.flatnonzero(predicted != official)
    reviewed = official.copy()
    reviewed[wrong[:2]] = predicted[wrong[:2]]  # judged wrong, corrected to what the model says
    reviewed[right[:1]] = -1  # judged unreadable
    np.savez(project / "data/prepared/test_verdicts.npz", index=TEST_INDEX, labels=reviewed, verdicts=np.int64(4))  # one more: `right`
    evaluate.main()
    metrics = json.loads((project / "eval/metrics.json").read_text())
    assert {key: metrics[key] for key in HEADLINE | CALIBRATION} == {key: before[key] for key in HEADLINE | CALIBRATION}
    assert metrics["test_verdicts"] == 4 and metrics["reviewed_digits"] == N - 1
    assert metrics["reviewed_accuracy"] == round((len(right) - 1 + 2) / (N - 1), 6)
    assert f"against the reviewed labels (4 verdicts): {metrics['reviewed_accuracy']:.2%} on {N - 1} digits" in capsys.readouterr().out


@pytest.mark.parametrize(("verdicts", "message"), [
    (None, r"data/prepared/test_verdicts\.npz: not found; run the preprocess stage first"),
    ({"index": TEST_INDEX[:-1], "labels": np.zeros(N - 1, np.int64), "verdicts": np.int64(0)},
     r"data/prepared/test_verdicts\.npz: made for other test digits than data/prepared/test\.npz; rerun the preprocess stage"),
], ids=["missing", "other-digits"])
def test_test_verdicts_missing_or_for_other_digits_name_the_preprocess_stage_and_nothing_is_written(project, verdicts, message):
    path = project / "data/prepared/test_verdicts.npz"
    path.unlink()
    if verdicts is not None:
        np.savez(path, **verdicts)
    with pytest.raises(UserError, match=f"^{message}"):
        evaluate.main()
    assert not (project / "eval").exists() and not (project / "data/eval").exists()
