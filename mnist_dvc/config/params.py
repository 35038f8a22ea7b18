"""The one schema for `params.yaml`: every key, its type and its allowed range, in one place.

Each stage calls `load_params("<its section>")` before doing any work. The whole file is checked
(so a typo anywhere, such as `train.epoch`, stops the first stage that runs, not the last), but a
stage receives, and therefore reads, only the section that its `dvc.yaml` entry declares.
"""

import copy
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mnist_dvc import TEST_SIZE, TRAIN_SIZE
from mnist_dvc.errors import UserError

# Neural models live in mnist_dvc/models/networks.py, the scikit-learn baselines in mnist_dvc/models/classical.py;
# tests/unit/models/test_networks.py checks that these names and those registries agree.
NEURAL_MODELS = ("vgg_bn", "kaggle_cnn", "tf_conv2d", "keras_cnn", "flat_mlp")
CLASSICAL_MODELS = ("svc", "knn")


class Section(BaseModel):
    """Base for every section: unknown keys are errors, values are never silently coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Download(Section):
    mirrors: list[str] = Field(min_length=1)  # base URLs holding the four .gz files, tried in order
    retries: int = Field(ge=0, le=10)  # extra attempts per source after a transient failure
    timeout_s: float = Field(gt=0, le=600)  # seconds without data before a request is abandoned


class Distortion(Section):
    """Strengths of random affine and elastic distortions; 0 turns each one off."""

    rotation_deg: float = Field(ge=0, le=45)  # uniform in [-r, r]
    shift_px: float = Field(ge=0, le=8)  # uniform in [-s, s], per axis
    scale: float = Field(ge=0, le=0.5)  # zoom factor uniform in [1 - s, 1 + s]
    shear_deg: float = Field(ge=0, le=45)  # uniform in [-h, h]


class CachedAugment(Distortion):
    copies: int = Field(ge=0, le=20)  # distorted copies of each training image added to the set
    elastic_alpha: float = Field(ge=0, le=100)  # elastic displacement strength (pixels before smoothing)
    elastic_sigma: float = Field(gt=0, le=20)  # Gaussian smoothing of the displacement field


class Preprocess(Section):
    train_subset: int = Field(ge=0, le=TRAIN_SIZE)  # use the first N training images; 0 = all
    test_subset: int = Field(ge=0, le=TEST_SIZE)  # use the first N test images; 0 = all
    val_size: int = Field(ge=1)  # images held out of the training set, stratified by digit
    seed: int = Field(ge=0, le=2**32 - 1)
    deskew: bool  # straighten every image by its second-order moments
    stroke: bool  # thin or thicken every digit's strokes towards the training digits' median ink width
    augment: CachedAugment

    @model_validator(mode="after")
    def _validation_fits(self):
        available = self.train_subset or TRAIN_SIZE
        if self.val_size > available - 10:
            raise ValueError(
                f"val_size = {self.val_size} leaves too few training images: at most "
                f"{available - 10} of the {available} training images may be held out"
            )
        return self


class Classical(Section):
    pca_components: int = Field(ge=1, le=784)  # pixels are projected onto this many components first
    svc_c: float = Field(gt=0)  # RBF-SVC regularisation
    knn_neighbors: int = Field(ge=1, le=100)


class Train(Section):
    model: Literal[NEURAL_MODELS + CLASSICAL_MODELS]
    width: int = Field(ge=4, le=512)  # vgg_bn only: channels of its first block, doubled per block
    epochs: int = Field(ge=1, le=1000)
    batch_size: int = Field(ge=1, le=65_536)
    optimizer: Literal["adamw", "sgd", "rmsprop"]
    learning_rate: float = Field(gt=0, le=10)  # peak rate of the schedule
    schedule: Literal["onecycle", "cosine", "constant"]
    warmup_fraction: float = Field(ge=0, lt=1)  # share of steps spent warming up (onecycle, cosine)
    weight_decay: float = Field(ge=0, le=1)
    label_smoothing: float = Field(ge=0, lt=1)
    ema_decay: float = Field(ge=0, lt=1)  # exponential moving average of weights; 0 = off
    seed: int = Field(ge=0, le=2**32 - 1)
    precision: Literal["float32", "bfloat16"]  # of the training step's activations and matmuls; weights stay float32
    augment: Distortion  # fresh random distortions of every batch, inside the jitted step
    classical: Classical


class Evaluate(Section):
    batch_size: int = Field(ge=1, le=65_536)
    examples: int = Field(ge=1, le=100)  # right and wrong test digits shown, each
    tta: bool  # test-time augmentation: average each digit's probabilities with its four 1-pixel shifts


class Ambiguous(Section):
    top_n: int = Field(ge=1, le=1000)  # digits kept per definition of ambiguity


class Committee(Section):
    """Members of committee/dvc.yaml: every model with every seed, each trained with `train`'s other keys."""

    models: list[Literal[NEURAL_MODELS + CLASSICAL_MODELS]] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(min_length=1)
    tta: bool  # each member predicts every digit and its four 1-pixel shifts, as evaluate.tta

    @model_validator(mode="after")
    def _distinct(self):
        for key in ("models", "seeds"):
            values = getattr(self, key)
            if len(set(values)) < len(values):
                raise ValueError(f"{key} = {values}: each member must differ, so list every value once")
        return self


class Audit(Section):
    """The label audit (audit/dvc.yaml): out-of-sample probabilities for every training digit from
    models trained on the other folds (each with `train`'s settings but `epochs`), then confident learning.

    `folds` lists the fold numbers 0, 1, ..., K-1 rather than giving K, because DVC's `matrix` can
    only iterate over a list; the list must therefore be exactly that sequence."""

    folds: list[int] = Field(max_length=100)
    epochs: int = Field(ge=1, le=1000)  # each fold model's passes over its training folds
    seed: int = Field(ge=0, le=2**32 - 1)  # which fold each training digit falls in
    top_n: int = Field(ge=1, le=1000)  # flagged digits shown in each gallery

    @field_validator("folds", mode="before")
    @classmethod
    def _a_list(cls, folds):
        if isinstance(folds, int) and not isinstance(folds, bool):
            example = f"[{', '.join(map(str, range(folds)))}]" if 0 < folds <= 10 else "[0, 1, 2, 3, 4] for 5 folds"
            raise ValueError(f"list the fold numbers, e.g. {example}: DVC's matrix iterates over a list, not a number")
        return folds

    @field_validator("folds")
    @classmethod
    def _numbered_from_zero(cls, folds: list[int]) -> list[int]:
        if len(folds) < 2:
            raise ValueError("cross-validation needs at least 2 folds, e.g. [0, 1, 2, 3, 4] for 5")
        if folds != list(range(len(folds))):
            raise ValueError("list the fold numbers 0, 1, ..., K-1 for K folds, e.g. [0, 1, 2, 3, 4] for 5")
        return folds


class Retrain(Section):
    """The second training (audit/dvc.yaml stage `retrain`, after the audit): `train`'s model and
    settings, trained again on the training digits changed by what the audit found (`mnist_dvc.audit.curation`)."""

    exclude_label_issues: bool  # leave out the training digits the audit flags as likely mislabelled
    hard_digits: int = Field(ge=0, le=TRAIN_SIZE)  # hardest unflagged training digits to oversample; 0 = none
    hard_copies: int = Field(ge=1, le=20)  # fresh distorted copies added of each (preprocess.augment's strengths)


class Predict(Section):
    input: str = Field(min_length=1)  # a folder of digit images or a Kaggle Digit Recognizer CSV


class Params(Section):
    download: Download
    preprocess: Preprocess
    train: Train
    evaluate: Evaluate
    ambiguous: Ambiguous
    committee: Committee
    predict: Predict
    audit: Audit
    retrain: Retrain


def diverged(cfg: Train, where: str, error: Exception) -> UserError:
    """The one line for a training run (`where`: "train", "fold 3") whose loss stopped being finite:
    `error` says when; the key to change is train.learning_rate."""
    return UserError(f"{where}: {error}; lower train.learning_rate (now {cfg.learning_rate}); "
                     "the checkpoint of the last good epoch is kept")


def check_train_fits(cfg: Train, n_images: int, n_devices: int) -> None:
    """The train keys that the schema cannot check alone, checked against the number of training
    images and of devices (every device must get an equal share of a batch); `UserError` naming the key."""
    if cfg.model in CLASSICAL_MODELS:
        most = min(n_images, 784)
        if cfg.classical.pca_components > most:
            raise UserError(f"params.yaml: train.classical.pca_components = {cfg.classical.pca_components}: "
                            f"at most min(training images, 784) = {most} components exist")
        if cfg.model == "knn" and cfg.classical.knn_neighbors > n_images:
            raise UserError(f"params.yaml: train.classical.knn_neighbors = {cfg.classical.knn_neighbors}: "
                            f"only {n_images} training images")
        return
    if cfg.batch_size > n_images:
        raise UserError(f"params.yaml: train.batch_size = {cfg.batch_size} is larger than the {n_images} training images")
    if cfg.batch_size % n_devices:
        raise UserError(f"params.yaml: train.batch_size = {cfg.batch_size} must be a multiple of the "
                        f"{n_devices} devices JAX sees, so every device gets an equal share")


def _describe(error: dict) -> str:
    """One readable line per pydantic error: the dotted key, the value given and what is allowed."""
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        parent = Params
        for part in error["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            parent = field.annotation if field else None
        allowed = ", ".join(parent.model_fields) if isinstance(parent, type) else "see README"
        return f"{key}: unknown key (allowed here: {allowed})"
    if error["type"] == "missing":
        return f"{key}: missing"
    if error["type"] == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        if isinstance(error.get("input"), dict):  # a check across keys: the message names them itself
            return f"{key}: {message}"
        return f"{key} = {error.get('input')!r}: {message}"
    return f"{key} = {error.get('input')!r}: {error['msg']}"


def parse_params(raw: object, source: str = "params.yaml") -> Params:
    """Validates already-loaded YAML; raises `UserError` naming every wrong key."""
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_describe(e) for e in error.errors())
        raise UserError(f"{source}: {problems}") from None


def load_params(section: str, path: str | Path = "params.yaml"):
    """Validates the whole params file and returns the one section a stage is allowed to read."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the stage from the project root") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML: {error}") from None
    return getattr(parse_params(raw, str(path)), section)


def with_settings(raw: dict, settings: dict[str, object]) -> dict:
    """A copy of loaded params.yaml with dotted keys set (`{"train.epochs": 2}`), as `dvc exp run -S`
    sets them; a key that does not exist yet is added, as a typo would be, for the schema to reject."""
    changed = copy.deepcopy(raw)
    for dotted, value in settings.items():
        *parents, last = dotted.split(".")
        node = changed
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return changed
