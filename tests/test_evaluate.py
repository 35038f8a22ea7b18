"""The evaluate stage run for real on an untrained (freshly initialised) network in a temporary folder."""

import csv
import json

import numpy as np
import pytest
import yaml
from flax import nnx
from PIL import Image

from stages import evaluate
from stages.lib import checkpoint
from stages.lib.errors import UserError
from stages.lib.models import build_model, init_rngs

N = 40
TEST_INDEX = np.arange(N, dtype=np.int64)


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root):
    """params.yaml (batch 16, 3 examples), a 40-digit test.npz and an untrained flat_mlp.

flat_mlp because it initialises in seconds on a CPU; the convolutional models take much longer.
"""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["evaluate"].update(batch_size=16, examples=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    labels = (np.arange(N) % 10).astype(np.uint8)
    (tmp_path / "data/prepared").mkdir(parents=True)
    np.savez(tmp_path / "data/prepared/test.npz", images=images, labels=labels, original=255 - images, index=TEST_INDEX)
    model = build_model("flat_mlp", width=32, rngs=init_rngs(0))
    checkpoint.save(tmp_path / "data/model/model.msgpack", nnx.state(model), {"model": "flat_mlp", "width": 32})
    (tmp_path / "data/model/model.json").write_text(json.dumps({"model": "flat_mlp", "width": 32}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_writes_metrics_per_digit_speed_confusion_probs_and_examples(project, capsys):
    evaluate.main()
    metrics = json.loads((project / "eval/metrics.json").read_text())
    assert set(metrics) == {"accuracy", "loss", "errors", "macro_f1"}

    with open(project / "eval/per_digit.csv") as f:
        per_digit = list(csv.DictReader(f))
    assert list(per_digit[0]) == ["digit", "precision", "recall", "f1", "support"]
    assert [int(row["digit"]) for row in per_digit] == list(range(10))
    assert [int(row["support"]) for row in per_digit] == [N // 10] * 10  # labels 0..9, four of each
    assert all(0 <= float(row[key]) <= 1 for row in per_digit for key in ("precision", "recall", "f1"))

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

    with open(project / "eval/confusion.csv") as f:
        confusion = list(csv.DictReader(f))
    assert len(confusion) == N and list(confusion[0]) == ["actual", "predicted"]
    assert [int(r["predicted"]) for r in confusion] == probs.argmax(axis=1).tolist()
    assert [int(r["actual"]) for r in confusion] == labels.tolist()
    for row in per_digit:  # recall of a digit: the share of its test digits predicted as it
        mine = [r for r in confusion if r["actual"] == row["digit"]]
        assert float(row["recall"]) == round(sum(r["predicted"] == row["digit"] for r in mine) / len(mine), 6)

    with open(project / "data/eval/examples.csv") as f:
        examples = list(csv.DictReader(f))
    assert list(examples[0]) == list(evaluate.EXAMPLE_COLUMNS)
    right = [r for r in examples if r["correct"] == "True"]
    wrong = [r for r in examples if r["correct"] == "False"]
    assert len(right) <= 3 and len(wrong) <= 3 and len(examples) == len(right) + len(wrong) > 0
    assert examples == right + wrong  # right ones first
    pngs = {p.name for p in (project / "data/eval/examples").iterdir()}
    assert pngs == {f"{r['index']}.png" for r in examples}
    first = examples[0]
    with Image.open(project / f"data/eval/examples/{first['index']}.png") as image:
        original = np.load(project / "data/prepared/test.npz")["original"][int(first["index"])]
        assert np.array_equal(np.asarray(image)[::4, ::4], original)
    with Image.open(project / "data/eval/examples.png") as image:
        image.verify()
    assert "test accuracy" in capsys.readouterr().out


def test_metrics_are_byte_identical_across_runs(project):
    files = ("eval/metrics.json", "eval/per_digit.csv", "eval/confusion.csv", "data/eval/examples.csv")
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
    """(Every check of test.npz is tests/test_prepared.py's.)"""
    np.savez(project / "data/prepared/test.npz", images=np.zeros((N, 28, 28), np.uint8), labels=np.zeros(N, np.uint8))
    with pytest.raises(UserError, match=r"test.npz: missing array\(s\) original, index; rerun the preprocess stage"):
        evaluate.main()
    assert not (project / "eval").exists() and not (project / "data/eval").exists()
