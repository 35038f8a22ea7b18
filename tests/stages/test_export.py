"""The export stage on a small model trained by the real stages (what an export is and how parity is
measured is tests/unit/release/test_onnx_export.py's): the file and eval/export.json on every test
digit, and one line, with no output, for a scikit-learn baseline."""

import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mnist_dvc.config import paths
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.models.inference import predict_proba
from mnist_dvc.models.saved import load_classifier
from mnist_dvc.release.onnx_export import INSTALL, TOLERANCE, load_onnx_classifier
from stages import export
from stages import train as train_stage


@pytest.fixture
def project(trained_project, tmp_path, monkeypatch):
    """The trained model, the test digits and params.yaml of the shared trained project, in a folder of this test's own."""
    for path in (paths.MODEL, paths.TEST_NPZ, paths.TRAIN_NPZ, paths.VAL_NPZ, paths.PREPARATION_JSON):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (trained_project / path).is_dir() else shutil.copy)(trained_project / path, tmp_path / path)
    shutil.copy(trained_project / "params.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.skipif(importlib.util.find_spec("jax2onnx") is None, reason=f'the optional extra "export" is not installed ({INSTALL})')
def test_the_stage_writes_the_model_and_its_parity_on_every_test_digit(project, capsys):
    export.main()
    record = json.loads((project / paths.EXPORT_JSON).read_text())
    digits = load_test_set(paths.TEST_NPZ)["images"]
    assert record["model"] == "flat_mlp" and record["digits_compared"] == record["top1_agreement"] == len(digits) == 1000
    assert 0 <= record["max_prob_diff"] < TOLERANCE
    assert record["file_bytes"] == (project / paths.EXPORT_ONNX).stat().st_size > 4 * 1_982_986  # flat_mlp's float32 weights
    assert set(record) == {"model", "digits_compared", "top1_agreement", "max_prob_diff", "file_bytes", "opset", "converter", "runtime"}
    assert capsys.readouterr().out.startswith(f"{paths.EXPORT_ONNX}: flat_mlp, ")
    onnx_probs = predict_proba(load_onnx_classifier(paths.EXPORT_ONNX, paths.MODEL), digits, 250)
    jax_probs = predict_proba(load_classifier(paths.MODEL), digits, 250)
    np.testing.assert_array_equal(onnx_probs.argmax(axis=1), jax_probs.argmax(axis=1))
    assert np.abs(onnx_probs - jax_probs).max() < TOLERANCE


def test_a_scikit_learn_baseline_stops_the_stage_with_one_line_and_no_output(project, edit_params, stage_env, repo_root):
    edit_params(project, {"train.classical.pca_components": 10})
    train_stage.main(["--model", "knn", "--seed", "0", "--out", "data/knn"])
    shutil.rmtree(project / paths.MODEL)
    shutil.move(project / "data/knn/model", project / paths.MODEL)
    done = subprocess.run([sys.executable, "-m", "stages.export"], cwd=project, env={**stage_env, "PYTHONPATH": str(repo_root)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr == f"error: knn: scikit-learn baselines do not export to ONNX ({paths.MODEL / 'model.json'})\n"
    assert not (project / paths.EXPORT_ONNX).exists() and not (project / paths.EXPORT_JSON).exists()
