"""One model trained end to end into any folder: the run's id alone decides whether a checkpoint is
resumed, and a classical model goes through the same call. (The train stage's outputs and its exact
resume after an interruption are tests/stages/test_train.py's; the loop itself tests/unit/training/test_loop.py's.)"""

import json

import pytest

from mnist_dvc.config import paths
from mnist_dvc.training.loop import NonFiniteLoss
from mnist_dvc.training.train_and_save import train_model

PREPARATION = {"deskew": False, "stroke_width": None}


@pytest.fixture
def data(mnist_train):
    images, labels = mnist_train
    return (images[:256], labels[:256]), (images[256:320], labels[256:320])


def test_the_run_id_decides_what_is_resumed(tmp_path, train_params, data, capsys):
    cfg = train_params(width=8, epochs=1, batch_size=64)
    out = paths.TrainOutputs.under(tmp_path / "second")
    train_model(cfg, *data, out, PREPARATION, run_id="settings and data A")
    assert json.loads((out.model / "model.json").read_text())["preparation"] == PREPARATION
    assert out.checkpoint.is_file() and out.history.is_file() and "val_accuracy" in json.loads(out.metrics.read_text())
    capsys.readouterr()

    train_model(cfg, *data, out, PREPARATION, run_id="settings and data A")
    assert "resuming after epoch 1" in capsys.readouterr().out  # nothing left to train
    train_model(cfg, *data, out, PREPARATION, run_id="settings and data B")
    assert "it was trained with other params or data" in capsys.readouterr().out


def test_a_classical_model_fits_in_one_go_into_the_same_layout(tmp_path, train_params, data):
    out = paths.TrainOutputs.under(tmp_path / "knn")
    train_model(train_params(model="knn"), *data, out, PREPARATION, run_id="unused")
    assert sorted(path.name for path in out.model.iterdir()) == ["model.json", "model.pkl"]
    assert out.checkpoint.parent.is_dir() and not out.checkpoint.exists()  # declared output, nothing to resume
    assert len(out.history.read_text().splitlines()) == 2


def test_a_diverging_network_raises_for_its_caller_to_word_and_writes_no_model(tmp_path, train_params, data):
    cfg = train_params(model="flat_mlp", optimizer="sgd", schedule="constant", learning_rate=10.0, label_smoothing=0.0, epochs=3, batch_size=16)
    out = paths.TrainOutputs.under(tmp_path / "diverging")
    with pytest.raises(NonFiniteLoss, match=r"^the loss became (nan|inf) at epoch \d+, step \d+$"):
        train_model(cfg, *data, out, PREPARATION, run_id="diverging")
    assert not out.model.exists() and not out.metrics.exists()
