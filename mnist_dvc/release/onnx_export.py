"""A trained network as an ONNX file for onnxruntime, checked to give JAX's probabilities.

The exported graph is the whole of `load_classifier(folder)` for a network: it takes uint8 digits
(batch, 28, 28), prepared as the model's model.json says (`mnist_dvc.digits.preparation`; the
graph does not prepare them), scales them to [0, 1] itself and returns the float32 softmax
probabilities (batch, 10), BatchNorm on its running statistics and dropout off (the evaluation
mode `load_network` gives). The batch dimension is dynamic, so any number of digits goes in one
call. jax2onnx traces the JAX function and writes the weights into the file; the file records the
SHA-256 of the weights it was made from, so that a file exported from another training is refused
rather than read with the wrong model's preparation.

An export counts only if it agrees with JAX: `export_checked` predicts the given digits with both
and writes the file only when every top-1 digit is the same and no probability differs by
`TOLERANCE` or more. The scikit-learn baselines do not export (skl2onnx would need its own
converter, pins and checks for two baselines that nobody ships).

jax2onnx, onnx and onnxruntime are the optional extra `export` (`pip install -e ".[export]"`): jax2onnx
brings a dozen packages and holds orbax-checkpoint back, so the core install stays without them,
and every function here that needs them says how to install them instead.
"""

import contextlib
import hashlib
import logging
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from mnist_dvc import IMAGE_SIDE
from mnist_dvc.config.params import CLASSICAL_MODELS
from mnist_dvc.errors import UserError, read_user_file
from mnist_dvc.io.atomic import write_bytes
from mnist_dvc.models.inference import Classifier, predict_proba
from mnist_dvc.models.saved import NEURAL_WEIGHTS, load_classifier, load_network, read_description

INSTALL = 'pip install -e ".[export]"'
TOLERANCE = 1e-5  # the largest probability difference from JAX that an export may have, exclusive
INPUT, OUTPUT = "digits", "probabilities"  # the graph's input and output names
SOURCE_KEY = "mnist_dvc.weights_sha256"  # metadata: the SHA-256 of the model.msgpack the file was made from


def _require(module: str):
    """The optional module `module`, or a `UserError` saying how to install the export extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"ONNX export and the onnx runtime need the optional packages jax2onnx, onnx and onnxruntime: {INSTALL}") from None


def _weights_hash(folder: Path) -> str:
    return hashlib.sha256(read_user_file(folder / NEURAL_WEIGHTS)).hexdigest()


def _network_name(folder: Path) -> str:
    """The model name in `folder`'s model.json, refusing the scikit-learn baselines."""
    name = read_description(folder)["model"]
    if name in CLASSICAL_MODELS:
        raise UserError(f"{name}: scikit-learn baselines do not export to ONNX ({folder / 'model.json'})")
    return name


@contextlib.contextmanager
def _quiet_converter():
    """The converter's notices silenced for the block, as none is the user's to act on: onnx_ir's
    warning for every shape constant jax2onnx leaves untyped, and jax2onnx's own use of Flax APIs
    that Flax deprecates."""
    log = logging.getLogger("onnx_ir")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="jax2onnx")
            yield
    finally:
        log.setLevel(level)


def export_bytes(folder: Path) -> bytes:
    """The network saved in `folder` as a serialized ONNX model (module docstring); `UserError` for a
    scikit-learn model, a missing extra or unreadable files."""
    name = _network_name(folder)
    jax2onnx = _require("jax2onnx")
    import jax
    import jax.numpy as jnp

    from mnist_dvc.models.networks import to_inputs

    network = load_network(folder)

    def probabilities(digits):  # as `mnist_dvc.models.inference.neural_classifier`, which the parity check holds it to
        return jax.nn.softmax(network(to_inputs(digits)), axis=-1)

    with _quiet_converter():
        model = jax2onnx.to_onnx(probabilities, [jax.ShapeDtypeStruct(("batch", IMAGE_SIDE, IMAGE_SIDE), jnp.uint8)],
                                 model_name=name, input_names=[INPUT], output_names=[OUTPUT])
    model.metadata_props.add(key=SOURCE_KEY, value=_weights_hash(folder))
    return model.SerializeToString()


def describe(onnx_model: bytes) -> dict:
    """What an exported file is: its size, ONNX opset, the converter and the runtime it was checked with."""
    onnx = _require("onnx")
    model = onnx.load_from_string(onnx_model)
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    return {"file_bytes": len(onnx_model), "opset": int(opset), "converter": f"{model.producer_name} {model.producer_version}",
            "runtime": f"onnxruntime {metadata.version('onnxruntime')}"}


def _session(onnx_model: bytes, name: str):
    """An onnxruntime session on the CPU for the serialized model; `UserError` naming `name` if it is none."""
    ort = _require("onnxruntime")
    from onnxruntime.capi import onnxruntime_pybind11_state as failures

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's to act on
    try:
        return ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
    except (failures.InvalidProtobuf, failures.InvalidGraph, failures.Fail, failures.InvalidArgument, failures.NotImplemented) as error:
        raise UserError(f"{name}: not an ONNX model onnxruntime can run ({' '.join(str(error).split())[:200]})") from None


def _classifier(session) -> Classifier:
    return lambda digits: session.run([OUTPUT], {INPUT: np.ascontiguousarray(digits, dtype=np.uint8)})[0]


def load_onnx_classifier(path: Path, model_folder: Path) -> Classifier:
    """The exported file at `path` as a `Classifier` run by onnxruntime (uint8 digits (N, 28, 28) to
    float32 probabilities (N, 10)), checked to be an export of the network in `model_folder`, whose
    model.json says how its digits must be prepared. `UserError` if it is missing, no ONNX model,
    or exported from other weights."""
    _network_name(model_folder)
    onnx_model = read_user_file(path)
    session = _session(onnx_model, str(path))
    source = session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY)
    if source is None:
        raise UserError(f"{path}: not exported by `mnist-dvc export` (it names no source weights); export {model_folder} again")
    if source != _weights_hash(model_folder):
        raise UserError(f"{path}: exported from other weights than {model_folder / NEURAL_WEIGHTS}; export it again "
                        "(mnist-dvc export --format onnx, or dvc repro export/dvc.yaml)")
    return _classifier(session)


def parity(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """How far `candidate`'s probabilities (N, 10) are from `reference`'s for the same N digits: the
    number of digits whose top-1 digit is the same, and the largest absolute difference of any probability."""
    return {"digits_compared": len(reference), "top1_agreement": int((reference.argmax(axis=1) == candidate.argmax(axis=1)).sum()),
            "max_prob_diff": float(np.abs(reference.astype(np.float64) - candidate).max(initial=0.0))}


def export_checked(model_folder: Path, out: Path, digits: np.ndarray, batch_size: int) -> dict:
    """Exports the network in `model_folder`, predicts `digits` (uint8 (N, 28, 28)) with it and with JAX in
    batches of `batch_size`, and writes the file to `out` (atomically) only if they agree: the same top-1
    digit everywhere and every probability within `TOLERANCE`. Returns the model's name, `parity`'s
    figures and `describe`'s; `UserError` with them when they disagree."""
    onnx_model = export_bytes(model_folder)
    onnx_probs = predict_proba(_classifier(_session(onnx_model, str(out))), digits, batch_size)
    figures = parity(predict_proba(load_classifier(model_folder), digits, batch_size), onnx_probs)
    if figures["top1_agreement"] < len(digits) or figures["max_prob_diff"] >= TOLERANCE:
        raise UserError(f"{model_folder}: its ONNX export disagrees with JAX: {len(digits) - figures['top1_agreement']} of "
                        f"{len(digits)} digits get another top-1 digit, the largest probability difference is "
                        f"{figures['max_prob_diff']:.2e} (limit {TOLERANCE:.0e}); {out} not written")
    write_bytes(out, onnx_model)
    return {"model": _network_name(model_folder), **figures, **describe(onnx_model)}
