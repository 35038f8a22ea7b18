"""The train stage on a small real slice: outputs, exact resume after an interruption, baselines,
and the params that only the data can check. (The training loop itself is tests/unit/training/test_loop.py's.)"""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz, write_json
from mnist_dvc.training import loop as fit_module
from mnist_dvc.training.loop import HISTORY_COLUMNS
from stages import train as train_stage

OUT = paths.TRAIN


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, mnist_train):
    folder = tmp_path_factory.mktemp("prepared")
    images, labels = mnist_train
    save_npz(folder / "train.npz", images=images[:512], labels=labels[:512])
    save_npz(folder / "val.npz", images=images[512:640], labels=labels[512:640])
    write_json(folder / "preparation.json", {"deskew": False})
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, prepared, edit_params):
    """A working folder with data/prepared and a params.yaml whose train section `configure` edits
    (on top of the shipped params, a narrow network for 2 epochs)."""
    shutil.copytree(prepared, tmp_path / "data" / "prepared")
    monkeypatch.chdir(tmp_path)

    def configure(**train):
        shutil.copy(repo_root / "params.yaml", tmp_path)
        edit_params(tmp_path, {f"train.{key}": value for key, value in {"width": 8, "epochs": 2, "batch_size": 64, **train}.items()})

    configure()
    return configure


def test_writes_model_history_metrics_and_checkpoint(project):
    train_stage.main([])
    header, first, second = OUT.history.read_text().splitlines()
    assert header == ",".join(HISTORY_COLUMNS)
    assert [first.split(",")[0], second.split(",")[0]] == ["1", "2"]
    assert float(second.split(",")[1]) < float(first.split(",")[1])  # the training loss fell
    summary = yaml.safe_load(OUT.metrics.read_text())
    assert set(summary) == {"val_accuracy", "val_loss", "train_seconds", "images_per_second"}
    assert 0 <= summary["val_accuracy"] <= 1
    assert summary["val_accuracy"] == float(second.split(",")[4])  # the last epoch's
    assert sorted(path.name for path in OUT.model.iterdir()) == ["model.json", "model.msgpack"]
    description = json.loads((OUT.model / "model.json").read_text())
    assert description["model"] == "vgg_bn" and description["preparation"] == {"deskew": False}  # as preprocess said
    assert OUT.checkpoint.is_file()


def test_an_interrupted_run_resumes_to_the_same_weights(project, monkeypatch, capsys):
    train_stage.main([])
    uninterrupted = (OUT.model / "model.msgpack").read_bytes()
    history = OUT.history.read_text()
    shutil.rmtree(OUT.model)
    OUT.checkpoint.unlink()

    run_epoch = fit_module.run_epoch

    def interrupted_in_epoch_2(trainer, state, epoch, *args, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt
        return run_epoch(trainer, state, epoch, *args, **kwargs)

    monkeypatch.setattr(fit_module, "run_epoch", interrupted_in_epoch_2)  # Ctrl-C during epoch 2
    with pytest.raises(KeyboardInterrupt):
        train_stage.main([])
    assert not OUT.model.exists() and OUT.checkpoint.is_file()
    monkeypatch.setattr(fit_module, "run_epoch", run_epoch)
    capsys.readouterr()
    train_stage.main([])
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert (OUT.model / "model.msgpack").read_bytes() == uninterrupted
    seconds = HISTORY_COLUMNS.index("seconds")
    assert [row.split(",")[:seconds] for row in OUT.history.read_text().splitlines()] == \
        [row.split(",")[:seconds] for row in history.splitlines()]


def test_a_checkpoint_of_other_params_is_not_resumed(project, capsys):
    train_stage.main([])
    project(learning_rate=0.001)
    train_stage.main([])
    out = capsys.readouterr().out
    assert "trained with other params or data" in out and "resuming" not in out


def test_a_classical_baseline_goes_through_the_same_stage(project):
    project(model="knn")
    train_stage.main([])
    assert sorted(path.name for path in OUT.model.iterdir()) == ["model.json", "model.pkl"]
    assert json.loads((OUT.model / "model.json").read_text()) == {"model": "knn", "preparation": {"deskew": False}}
    assert len(OUT.history.read_text().splitlines()) == 2
    assert yaml.safe_load(OUT.metrics.read_text())["val_accuracy"] > 0.7


@pytest.mark.parametrize(("argv", "what_ran"), [
    ([], "train"),
    (["--seed", "3", "--out", "data/committee/flat_mlp-3"], "train --seed 3 --out data/committee/flat_mlp-3"),
], ids=["train stage", "committee member"])
def test_a_diverging_run_stops_with_the_epoch_and_step_naming_what_ran(project, argv, what_ran):
    project(model="flat_mlp", optimizer="sgd", schedule="constant", learning_rate=10.0, label_smoothing=0.0)
    with pytest.raises(UserError, match=rf"^{what_ran}: the loss became (nan|inf) at epoch \d+, step \d+; "
                                        r"lower train\.learning_rate \(now 10\.0\); the checkpoint of the last good epoch is kept$"):
        train_stage.main(argv)
    assert not OUT.model.exists() and not Path("data/committee/flat_mlp-3/model").exists()


# --- params that only the data can check: one line naming the key, before any work -------------


def test_a_batch_larger_than_the_training_set_is_a_user_error(project):
    project(batch_size=1024)
    with pytest.raises(UserError, match=r"^params\.yaml: train\.batch_size = 1024 is larger than the 512 training images$"):
        train_stage.main([])
    assert not OUT.model.exists() and not OUT.checkpoint.parent.exists()
