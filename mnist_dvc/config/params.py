"""The one schema for `params.yaml`: every key, its type, its allowed range and its description, in
one place (docs/params.md is generated from it by `python -m mnist_dvc.config.params_doc`).

Each stage calls `load_params("<its section>")` before doing any work. The whole file is checked
(so a typo anywhere, such as `train.epoch`, stops the first stage that runs, not the last), but a
stage receives, and therefore reads, only the section that its `dvc.yaml` entry declares.
"""

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
    """The download stage: where the four official MNIST files come from. `$MNIST_MIRROR` (a folder
    or URL), when set, is tried before `mirrors`; a file is accepted by the SHA-256 of its decompressed bytes."""

    mirrors: list[str] = Field(min_length=1, description="base URLs holding the four `.gz` files, tried in order")
    retries: int = Field(ge=0, le=10, description="extra attempts per source after a transient failure "
                                                  "(connection error, timeout, 5xx, 429, body cut short)")
    timeout_s: float = Field(gt=0, le=600, description="seconds without data before a request is abandoned")


class Distortion(Section):
    """Strengths of random affine distortions, drawn anew for every image; 0 turns each one off."""

    rotation_deg: float = Field(ge=0, le=45, description="degrees: rotation uniform in [-r, r]")
    shift_px: float = Field(ge=0, le=8, description="pixels: shift uniform in [-s, s], per axis")
    scale: float = Field(ge=0, le=0.5, description="zoom factor uniform in [1 - s, 1 + s]")
    shear_deg: float = Field(ge=0, le=45, description="degrees: shear uniform in [-h, h]")


class CachedAugment(Distortion):
    """Distorted copies of the training images, made once by the preprocess stage and cached: each a
    random affine distortion (rotation, shift, zoom, shear) composed with an elastic one (Simard et
    al. 2003) that mimics the wobble of a hand."""

    copies: int = Field(ge=0, le=20, description="distorted copies of each training image appended to the set; 0 = off. "
                                                 "Shipped off: at full length one copy gained nothing over `train.augment`'s "
                                                 "fresh shifts (docs/choices.md)")
    elastic_alpha: float = Field(ge=0, le=100, description="elastic displacement strength, in pixels before smoothing; 0 = off")
    elastic_sigma: float = Field(gt=0, le=20, description="pixels: standard deviation of the Gaussian that smooths the displacement field")


class Preprocess(Section):
    """The preprocess stage: which images, the validation split, and how every digit is prepared
    (the same preparation is applied to any digit predicted later)."""

    train_subset: int = Field(ge=0, le=TRAIN_SIZE, description="use only the first N training images, 0 = all; "
                                                               "for quick experiments and the tests")
    test_subset: int = Field(ge=0, le=TEST_SIZE, description="use only the first N test images, 0 = all")
    val_size: int = Field(ge=1, description="training images held out for validation, stratified by digit; "
                                            "at least 10 must remain for training")
    seed: int = Field(ge=0, le=2**32 - 1, description="seeds the validation split and the cached distortions")
    deskew: bool = Field(description="straighten every digit by its second-order image moments (a shear about its "
                                     "centre of mass)")
    stroke: bool = Field(description="thin or thicken every digit's strokes towards the training digits' median ink "
                                     "width; for pictures drawn with another pen (docs/own-digits.md)")
    review: bool = Field(description="apply the verdicts of labels/review.csv to the training digits: those judged "
                                     "mislabelled get their corrected label, those judged unreadable are left out. Shipped on: "
                                     "a verdict is a person's deliberate judgement, and the file ships empty, so it changes "
                                     "nothing until someone reviews (docs/label-review.md). Test verdicts are always only "
                                     "reported, never trained on")
    augment: CachedAugment = Field(description="distorted copies cached by this stage")

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
    """The scikit-learn baselines (`train.model` svc or knn): the pixels are projected by PCA first."""

    pca_components: int = Field(ge=1, le=784, description="principal components the pixels are projected onto; "
                                                          "at most the number of training images")
    svc_c: float = Field(gt=0, description="`svc`: regularisation of the RBF support vector classifier (larger fits harder)")
    knn_neighbors: int = Field(ge=1, le=100, description="`knn`: neighbours that vote, weighted by distance; "
                                                         "at most the number of training images")


class Train(Section):
    """The train stage, and every other training: the committee's members (with their own `model`
    and `seed`), the audit's fold models (with `audit.epochs`) and the second training."""

    model: Literal[NEURAL_MODELS + CLASSICAL_MODELS] = Field(
        description="`vgg_bn` is ours, the other networks are published ones rebuilt, `svc` and `knn` are scikit-learn "
                    "baselines (docs/models.md)")
    width: int = Field(ge=4, le=512, description="`vgg_bn` only: channels of its first block, doubled per block")
    epochs: int = Field(ge=1, le=1000, description="passes over the training set")
    batch_size: int = Field(ge=1, le=65_536, description="images per step, split evenly over the devices (so a multiple of "
                                                         "their number); 64 trained 1.3-1.7x more images per second than "
                                                         "128 on the 2-core CPU")
    optimizer: Literal["adamw", "sgd", "rmsprop"] = Field(description="the update rule: `sgd` with Nesterov momentum 0.9, "
                                                                      "the others with optax's defaults")
    learning_rate: float = Field(gt=0, le=10, description="peak learning rate of the schedule")
    schedule: Literal["onecycle", "cosine", "constant"] = Field(
        description="`onecycle` (cosine from 1/25 of the peak up to it, then down to 1/25,000 of it), `cosine` "
                    "(linear warm-up from 0, then cosine to 0) or `constant`")
    warmup_fraction: float = Field(ge=0, lt=1, description="share of the steps spent warming up (`onecycle`, `cosine`)")
    weight_decay: float = Field(ge=0, le=1, description="decoupled weight decay, on kernels only (decaying biases and "
                                                        "batch-norm scales only hurts)")
    label_smoothing: float = Field(ge=0, lt=1, description="share of each target spread evenly over the ten digits")
    ema_decay: float = Field(ge=0, lt=1, description="exponential moving average of the weights, used for validation and the "
                                                     "saved model; 0 = off. Shipped off: 0.999 measured no better")
    seed: int = Field(ge=0, le=2**32 - 1, description="seeds initialisation, data order, dropout and distortions")
    precision: Literal["float32", "bfloat16"] = Field(
        description="number format of the training step's activations and matmuls; weights, updates and the loss stay "
                    "float32. `bfloat16` pays only on a GPU's tensor cores")
    augment: Distortion = Field(description="fresh random distortions of every batch, inside the jit-compiled step")
    classical: Classical = Field(description="the scikit-learn baselines' settings")


class Evaluate(Section):
    """The evaluate stage: the trained model's scores on the prepared test set, and examples."""

    batch_size: int = Field(ge=1, le=65_536, description="test images per inference call; 250 ran fastest on the 2-core CPU")
    examples: int = Field(ge=1, le=100, description="right and wrong test digits shown, each")
    tta: bool = Field(description="test-time augmentation: average each digit's probabilities with those of its four "
                                  "1-pixel shifts. Shipped on: five predictions per digit, a few seconds on a CPU, for about a tenth of a point (docs/choices.md)")


class Ambiguous(Section):
    """The ambiguous stage: the test digits the model finds most ambiguous, by each definition of ambiguity."""

    top_n: int = Field(ge=1, le=1000, description="digits kept per definition of ambiguity")


class ReviewTop(Section):
    """How many digits a review queue holds, per split."""

    test: int = Field(ge=0, le=TEST_SIZE, description="test digits in each queue of test digits; 0 = none")
    train: int = Field(ge=0, le=TRAIN_SIZE, description="training digits in the audit's queue of training digits; 0 = none")


class Review(Section):
    """The review queues (stage `ambiguous` for the test digits, stage `audit` for both splits): the digits
    whose labels most deserve a person's look, lowest label quality first, for `mnist-dvc review`."""

    top: ReviewTop = Field(description="queue length per split")


class Committee(Section):
    """Members of committee/dvc.yaml: every model with every seed, each trained with `train`'s other keys."""

    models: list[Literal[NEURAL_MODELS + CLASSICAL_MODELS]] = Field(min_length=1, description="`train.model` values, each once")
    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(min_length=1, description="`train.seed` values, each once")
    tta: bool = Field(description="every member predicts each digit and its four 1-pixel shifts, as `evaluate.tta`. Shipped "
                                  "on, as `evaluate.tta`, so that each member is scored as the pipeline's model is")

    @model_validator(mode="after")
    def _distinct(self):
        for key in ("models", "seeds"):
            values = getattr(self, key)
            if len(set(values)) < len(values):
                raise ValueError(f"{key} = {values}: each member must differ, so list every value once")
        return self


class Audit(Section):
    """The label audit (audit/dvc.yaml): out-of-sample probabilities for every training digit from
    models trained on the other folds (each with `train`'s settings but `epochs`), then confident learning."""

    folds: list[int] = Field(max_length=100, description="the fold numbers 0, 1, ..., K-1 for K ≥ 2 folds, listed rather than K "
                                                         "because DVC's `matrix` (one stage per fold) iterates over lists only")
    epochs: int = Field(ge=1, le=1000, description="each fold model's passes over its training folds; fewer than `train.epochs` "
                                                   "as shipped, so the whole audit takes minutes on a 2-core CPU")
    seed: int = Field(ge=0, le=2**32 - 1, description="which fold each training digit falls in (stratified by digit)")
    top_n: int = Field(ge=1, le=1000, description="flagged digits shown in each gallery")

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
    settings, trained again on the training digits changed by what the audit found (`mnist_dvc.audit.curation`).
    Shipped doing both changes; docs/committee-and-audit.md compares each alone with the first training."""

    exclude_label_issues: bool = Field(description="leave out the training digits the audit flags as likely mislabelled "
                                                   "(data/audit/train/issues.csv)")
    hard_digits: int = Field(ge=0, le=TRAIN_SIZE, description="oversample this many unflagged training digits, those of lowest "
                                                              "out-of-fold label quality; 0 = none")
    hard_copies: int = Field(ge=1, le=20, description="fresh distorted copies added of each hard digit, with "
                                                      "`preprocess.augment`'s strengths")


class Predict(Section):
    """The predict stage: the trained model's readings of digits from outside MNIST, prepared as the training digits were."""

    input: str = Field(min_length=1, description="a folder of digit pictures or a Kaggle Digit Recognizer CSV, relative to the project root")


class Gate(Section):
    """`mnist-dvc promote`: when a candidate model may take stage `prod` in the model registry (docs/registry.md)."""

    min_gain: float = Field(ge=0, le=1, description="least rise in test accuracy over the `prod` model (0.0005 = 5 more of the "
                                                    "10,000 test digits right)")
    max_digit_drop: float = Field(ge=0, le=1, description="largest fall allowed in any digit's test F1 against the `prod` model")
    min_accuracy: float = Field(ge=0, le=1, description="least test accuracy for the first promotion, when no model is at `prod`")


class Params(Section):
    """Every key of params.yaml, one section per stage or pipeline. Each is checked before a stage does any
    work: a typo (`train.epoch`), a wrong type or an out-of-range value stops it with one line naming the
    key, the value and what is allowed."""

    download: Download
    preprocess: Preprocess
    train: Train
    evaluate: Evaluate
    ambiguous: Ambiguous
    review: Review
    committee: Committee
    predict: Predict
    audit: Audit
    retrain: Retrain
    gate: Gate


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
        allowed = ", ".join(parent.model_fields) if isinstance(parent, type) else "see docs/params.md"
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

