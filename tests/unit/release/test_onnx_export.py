"""ONNX export: every network exports at a small size and gives JAX's probabilities in onnxruntime,
for any batch size; the file is refused when it is no ONNX model or comes from other weights; the
scikit-learn baselines are refused with one line. Without the `export` extra, every use says how to
install it (run where the extra is missing)."""

import importlib.util

import numpy as np
import pytest

from mnist_dvc.config.params import NEURAL_MODELS
from mnist_dvc.errors import UserError
from mnist_dvc.models import classical
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import load_classifier, save_classical, save_neural
from mnist_dvc.release.onnx_export import (
    INSTALL,
    TOLERANCE,
    export_bytes,
    export_checked,
    load_onnx_classifier,
    parity,
)

INSTALLED = importlib.util.find_spec("jax2onnx") is not None and importlib.util.find_spec("onnxruntime") is not None
needs_extra = pytest.mark.skipif(not INSTALLED, reason=f'the optional extra "export" is not installed ({INSTALL})')
DIGITS = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
PREPARATION = {"deskew": True, "stroke_width": None}


def saved_network(folder, name, seed=0):
    model = build_model(name, width=4, rngs=init_rngs(seed))  # width: vgg_bn's only; the others have fixed sizes
    model.eval()
    save_neural(folder, model, name, 4, PREPARATION)
    return folder


@needs_extra
@pytest.mark.parametrize("name", NEURAL_MODELS)
def test_every_network_exports_with_jaxs_probabilities_for_any_batch(name, tmp_path):
    folder = saved_network(tmp_path / "model", name)
    record = export_checked(folder, tmp_path / "model.onnx", DIGITS, batch_size=24)  # its last batch padded
    assert record["model"] == name and record["digits_compared"] == 64 and record["top1_agreement"] == 64
    assert record["max_prob_diff"] < TOLERANCE
    assert record["file_bytes"] == (tmp_path / "model.onnx").stat().st_size and record["opset"] >= 17
    assert record["converter"].startswith("jax2onnx ") and record["runtime"].startswith("onnxruntime ")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model", "model.onnx"]  # nothing left beside it

    onnx_classifier, jax_probs = load_onnx_classifier(tmp_path / "model.onnx", folder), load_classifier(folder)(DIGITS)
    for size in (1, 7, 64):  # the batch dimension is dynamic
        probs = onnx_classifier(DIGITS[:size])
        assert probs.shape == (size, 10) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, jax_probs[:size], rtol=0, atol=TOLERANCE)


def test_parity_counts_top1_agreement_and_the_largest_probability_difference():
    reference = np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]], np.float32)
    candidate = np.array([[0.7, 0.3], [0.6, 0.4], [0.5, 0.5]], np.float32)
    figures = parity(reference, candidate)
    assert figures["digits_compared"] == 3 and figures["top1_agreement"] == 2
    assert figures["max_prob_diff"] == pytest.approx(0.2, abs=1e-7)


def test_a_scikit_learn_baseline_is_refused_in_one_line(mnist_train, tmp_path):
    images, labels = mnist_train
    estimator = classical.fit("svc", images[:200], labels[:200], pca_components=10, svc_c=1.0, knn_neighbors=3, seed=0)
    save_classical(tmp_path, estimator, "svc", PREPARATION)
    for attempt in (lambda: export_bytes(tmp_path), lambda: export_checked(tmp_path, tmp_path / "model.onnx", DIGITS, 32),
                    lambda: load_onnx_classifier(tmp_path / "model.onnx", tmp_path)):
        with pytest.raises(UserError, match=r"^svc: scikit-learn baselines do not export to ONNX \(.*model.json\)$"):
            attempt()
    assert not (tmp_path / "model.onnx").exists()


@needs_extra
def test_an_export_of_other_weights_a_missing_file_and_a_file_that_is_no_onnx_are_each_named(tmp_path):
    exported = saved_network(tmp_path / "exported", "flat_mlp", seed=0)
    export_checked(exported, tmp_path / "model.onnx", DIGITS[:4], batch_size=4)
    retrained = saved_network(tmp_path / "retrained", "flat_mlp", seed=1)
    with pytest.raises(UserError, match=r"model.onnx: exported from other weights than .*retrained/model.msgpack; export it again"):
        load_onnx_classifier(tmp_path / "model.onnx", retrained)
    with pytest.raises(UserError, match=r"missing.onnx: not found$"):
        load_onnx_classifier(tmp_path / "missing.onnx", exported)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(UserError, match=r"broken.onnx: not an ONNX model onnxruntime can run"):
        load_onnx_classifier(tmp_path / "broken.onnx", exported)


@pytest.mark.skipif(INSTALLED, reason="the export extra is installed here; this checks the message where it is not")
def test_without_the_extra_exporting_and_loading_say_how_to_install_it(tmp_path):
    folder = saved_network(tmp_path / "model", "flat_mlp")
    (tmp_path / "model.onnx").write_bytes(b"anything")
    for attempt in (lambda: export_bytes(folder), lambda: load_onnx_classifier(tmp_path / "model.onnx", folder)):
        with pytest.raises(UserError, match=r'need the optional packages jax2onnx, onnx and onnxruntime: pip install -e "\.\[export\]"$'):
            attempt()
