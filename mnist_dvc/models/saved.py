"""The files of a trained model (a folder holding model.json and its weights), and loading them
back as a `Classifier`, a function from uint8 images to probabilities.

model.json says which model it is, so any later code needs only `load_classifier(folder)`,
whether the model is a Flax network (weights in model.msgpack) or a scikit-learn pipeline
(model.pkl); every problem with the files is one `UserError` naming the file. Code that needs more
of a network than its probabilities (its last hidden layer, its gradients) takes the network
itself, `load_network(folder)`.
"""

import json
from pathlib import Path

from mnist_dvc.config.params import CLASSICAL_MODELS, NEURAL_MODELS
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import write_json
from mnist_dvc.models.inference import Classifier, neural_classifier

DESCRIPTION = "model.json"
NEURAL_WEIGHTS = "model.msgpack"
CLASSICAL_PICKLE = "model.pkl"


def read_description(folder: Path) -> dict:
    """model.json of `folder`, checked: a known model name, and a positive `width` for networks."""
    path = folder / DESCRIPTION
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the train stage first (dvc repro)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path}: corrupt, not JSON; rerun the train stage") from None
    name = description.get("model") if isinstance(description, dict) else None
    if name not in NEURAL_MODELS + CLASSICAL_MODELS:
        raise UserError(f"{path}: unknown model {name!r}; expected one of {', '.join(NEURAL_MODELS + CLASSICAL_MODELS)}")
    width = description.get("width")
    if name in NEURAL_MODELS and not (type(width) is int and width > 0):
        raise UserError(f"{path}: `width` must be a positive integer for {name}, got {width!r}; rerun the train stage")
    return description


def preparation(folder: Path) -> dict:
    """How digits must be prepared for the model in `folder` (`mnist_dvc.digits.preparation`), from its model.json."""
    found = read_description(folder).get("preparation")
    width = found.get("stroke_width") if isinstance(found, dict) else None
    if not (isinstance(found, dict) and isinstance(found.get("deskew"), bool) and (width is None or isinstance(width, float))):
        raise UserError(f"{folder / DESCRIPTION}: says nothing of how its digits were prepared; rerun the train stage (dvc repro)")
    return found


def save_neural(folder: Path, model, name: str, width: int, preparation: dict) -> None:
    """Writes a Flax model's state and the model.json that `load_classifier` rebuilds it from;
    `preparation` (preprocess's preparation.json) says how new digits must be prepared for it."""
    from flax import nnx

    from mnist_dvc.io import checkpoint
    from mnist_dvc.models.networks import count_params

    checkpoint.save(folder / NEURAL_WEIGHTS, nnx.state(model), {"model": name, "width": width})
    write_json(folder / DESCRIPTION, {"model": name, "width": width, "parameters": count_params(model), "preparation": preparation})


def save_classical(folder: Path, estimator, name: str, preparation: dict) -> None:
    """Writes a fitted scikit-learn pipeline and its model.json (`preparation` as for `save_neural`)."""
    from mnist_dvc.models import classical

    classical.save(estimator, folder / CLASSICAL_PICKLE)
    write_json(folder / DESCRIPTION, {"model": name, "preparation": preparation})


def _network(folder: Path, name: str, width: int):
    """The `mnist_dvc.models.networks.Network` saved in `folder`, its weights loaded, in evaluation mode."""
    from flax import nnx

    from mnist_dvc.io import checkpoint
    from mnist_dvc.models.networks import build_model, init_rngs

    model = build_model(name, width=width, rngs=init_rngs(0))
    model.eval()
    state, _ = checkpoint.load(folder / NEURAL_WEIGHTS, nnx.state(model))
    nnx.update(model, state)
    return model


def _classical(folder: Path) -> Classifier:
    from mnist_dvc.models import classical

    estimator = classical.load(folder / CLASSICAL_PICKLE)
    return lambda images: classical.predict_proba(estimator, images)


def load_classifier(folder: str | Path) -> Classifier:
    """The model saved in `folder` as a `Classifier`."""
    folder = Path(folder)
    description = read_description(folder)
    if description["model"] in CLASSICAL_MODELS:
        return _classical(folder)
    return neural_classifier(_network(folder, description["model"], description["width"]))


def load_network(folder: str | Path):
    """The Flax network saved in `folder` (a `mnist_dvc.models.networks.Network`: `embed`, `readout`, and
    the logits when called), weights loaded, in evaluation mode; None when the folder holds a
    scikit-learn model (`read_description(folder)["model"]` says which), which has neither a hidden
    layer nor a gradient to give."""
    folder = Path(folder)
    description = read_description(folder)
    if description["model"] in CLASSICAL_MODELS:
        return None
    return _network(folder, description["model"], description["width"])
