"""`mnist-dvc export --format onnx` and `mnist-dvc predict --runtime onnx` on a real (small) trained
model: the exported model answers as JAX does, and a missing or stale export is one line."""

import importlib.util
import json
import subprocess
import sys

import pytest

from mnist_dvc.config import paths
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import preparation, save_neural
from mnist_dvc.release.onnx_export import INSTALL, TOLERANCE

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax2onnx") is None,
                                reason=f'the optional extra "export" is not installed ({INSTALL})')


def mnist_dvc(project, *args):
    return subprocess.run([sys.executable, "-c", "from mnist_dvc.app.cli import main; main()", *map(str, args)],
                          cwd=project, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(trained_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    done = mnist_dvc(trained_project, "export", "--format", "onnx", "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr.startswith(f"{out}: flat_mlp, ") and f"on 1,000 of 1,000 digits of {paths.TEST_NPZ}" in done.stderr
    return out


def test_predict_with_onnxruntime_answers_as_with_jax(trained_project, exported):
    jax_rows = json.loads(mnist_dvc(trained_project, "predict", "samples/digits", "--json").stdout)
    done = mnist_dvc(trained_project, "predict", "samples/digits", "--json", "--runtime", "onnx", "--onnx", exported)
    assert done.returncode == 0, done.stderr
    onnx_rows = json.loads(done.stdout)
    assert len(onnx_rows) == len(jax_rows) == 20
    for jax_row, onnx_row in zip(jax_rows, onnx_rows):
        assert {key: onnx_row[key] for key in ("name", "prediction", "second", "ambiguous")} == \
               {key: jax_row[key] for key in ("name", "prediction", "second", "ambiguous")}
        # calibration divides the log-probabilities by a temperature near 1, so the difference stays of the same order
        assert abs(onnx_row["confidence"] - jax_row["confidence"]) < 10 * TOLERANCE


def test_a_missing_export_and_an_export_of_other_weights_are_one_line_each(trained_project, exported, tmp_path):
    done = mnist_dvc(trained_project, "predict", "samples/digits", "--runtime", "onnx", "--onnx", tmp_path / "none.onnx")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"error: {tmp_path / 'none.onnx'}: not found\n")

    other = build_model("flat_mlp", width=1, rngs=init_rngs(1))
    other.eval()
    save_neural(tmp_path / "other", other, "flat_mlp", 1, preparation(trained_project / paths.MODEL))
    done = mnist_dvc(trained_project, "predict", "samples/digits", "--runtime", "onnx", "--onnx", exported, "--model", tmp_path / "other")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"error: {exported}: exported from other weights than {tmp_path / 'other' / 'model.msgpack'}; export it again "
                           "(mnist-dvc export --format onnx, or dvc repro export/dvc.yaml)\n")


def test_export_refuses_other_formats_and_needs_the_digits_to_check_on(trained_project, tmp_path):
    done = mnist_dvc(trained_project, "export", "--format", "tflite")
    assert done.returncode == 2 and "invalid choice: 'tflite'" in done.stderr
    done = mnist_dvc(trained_project, "export", "--format", "onnx", "--digits", tmp_path / "none.npz", "--out", tmp_path / "model.onnx")
    assert done.returncode == 1
    assert done.stderr == f"error: {tmp_path / 'none.npz'}: not found; run the preprocess stage first (dvc repro)\n"
    assert not (tmp_path / "model.onnx").exists()
