"""The train stage on a small real slice: outputs, exact resume after an interruption, baselines."""

import shutil

import pytest
import yaml

from stages import train as train_stage
from stages.atomic import save_npz


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, mnist_train):
    folder = tmp_path_factory.mktemp("prepared")
    images, labels = mnist_train
    save_npz(folder / "train.npz", images=images[:512], labels=labels[:512])
    save_npz(folder / "val.npz", images=images[512:640], labels=labels[512:640])
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, prepared):
    """A working folder with data/prepared and a params.yaml whose train section `configure` edits."""
    shutil.copytree(prepared, tmp_path / "data" / "prepared")
    monkeypatch.chdir(tmp_path)

    def configure(**train):
        params = yaml.safe_load((repo_root / "params.yaml").read_text())
        params["train"].update({"width": 8, "epochs": 2, "batch_size": 64, **train})
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    configure()
    return configure


def test_writes_model_history_metrics_and_checkpoint(project):
    train_stage.main([])
    header, first, second = train_stage.PIPELINE.history.read_text().splitlines()
    assert header == ",".join(train_stage.HISTORY_COLUMNS)
    assert float(second.split(",")[1]) < float(first.split(",")[1])  # the training loss fell
    summary = yaml.safe_load(train_stage.PIPELINE.metrics.read_text())
    assert set(summary) == {"val_accuracy", "val_loss", "train_seconds", "images_per_second"}
    assert 0 <= summary["val_accuracy"] <= 1
    assert (train_stage.PIPELINE.model / "model.msgpack").is_file() and train_stage.PIPELINE.checkpoint.is_file()


def test_an_interrupted_run_resumes_to_the_same_weights(project, monkeypatch, capsys):
    train_stage.main([])
    uninterrupted = (train_stage.PIPELINE.model / "model.msgpack").read_bytes()
    shutil.rmtree("data/model")
    train_stage.PIPELINE.checkpoint.unlink()

    run_epoch = train_stage.run_epoch

    def interrupted_in_epoch_2(trainer, state, epoch, cfg):
        if epoch == 2:
            raise KeyboardInterrupt
        return run_epoch(trainer, state, epoch, cfg)

    monkeypatch.setattr(train_stage, "run_epoch", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_stage.main([])
    assert not (train_stage.PIPELINE.model).exists()
    monkeypatch.setattr(train_stage, "run_epoch", run_epoch)
    train_stage.main([])
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert (train_stage.PIPELINE.model / "model.msgpack").read_bytes() == uninterrupted


def test_a_checkpoint_of_other_params_is_not_resumed(project, capsys):
    train_stage.main([])
    project(learning_rate=0.001)
    train_stage.main([])
    out = capsys.readouterr().out
    assert "trained with other params or data" in out and "resuming" not in out


def test_a_classical_baseline_goes_through_the_same_stage(project):
    project(model="knn")
    train_stage.main([])
    assert (train_stage.PIPELINE.model / "model.pkl").is_file()
    assert len(train_stage.PIPELINE.history.read_text().splitlines()) == 2
    assert yaml.safe_load(train_stage.PIPELINE.metrics.read_text())["val_accuracy"] > 0.7


def test_a_diverging_run_stops_with_the_epoch_and_step(project):
    project(model="flat_mlp", optimizer="sgd", schedule="constant", learning_rate=10.0, label_smoothing=0.0)
    with pytest.raises(train_stage.UserError, match=r"^train: the loss became (nan|inf) at epoch \d+, step \d+"):
        train_stage.main([])
    assert not train_stage.PIPELINE.model.exists()
