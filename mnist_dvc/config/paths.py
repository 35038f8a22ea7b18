"""Where each stage reads and writes, declared once: the stage scripts import these, and
tests/unit/test_dvc_yaml.py checks that every `dvc.yaml` path under data/ and eval/ is one of them."""

from dataclasses import dataclass
from pathlib import Path

import platformdirs

RAW = Path("data/raw")  # the four official MNIST files, named as every mirror names them
RAW_TRAIN_IMAGES, RAW_TRAIN_LABELS = RAW / "train-images-idx3-ubyte.gz", RAW / "train-labels-idx1-ubyte.gz"
RAW_TEST_IMAGES, RAW_TEST_LABELS = RAW / "t10k-images-idx3-ubyte.gz", RAW / "t10k-labels-idx1-ubyte.gz"
PREPARED = Path("data/prepared")
TRAIN_NPZ, VAL_NPZ, TEST_NPZ = (PREPARED / f"{split}.npz" for split in ("train", "val", "test"))
TEST_VERDICTS_NPZ = PREPARED / "test_verdicts.npz"  # labels/review.csv's test verdicts, for evaluate's reviewed accuracy
TRAIN_LABELS_NPZ = PREPARED / "train_labels.npz"  # every training digit's label as training uses it (preprocess.review), for the audit's folds
PREPARATION_JSON = PREPARED / "preparation.json"  # how the digits were prepared, for preparing new ones alike
DIGIT_COUNTS_CSV = Path("eval/digit_counts.csv")
REVIEW_CSV = Path("labels/review.csv")  # a person's verdicts on labels (`mnist-dvc review`): in git, a dep of preprocess


@dataclass(frozen=True)
class TrainOutputs:
    """Where one training run writes: the model, its resumable checkpoint, its curves and metrics."""

    model: Path
    checkpoint: Path
    history: Path
    metrics: Path

    @classmethod
    def under(cls, folder: Path) -> "TrainOutputs":
        """A committee member's layout: everything in one folder of its own."""
        return cls(folder / "model", folder / "checkpoints" / "last.msgpack", folder / "train_history.csv", folder / "train.json")


# Unfinished trainings' checkpoints, one file per run fingerprint, outside the project: DVC puts an
# experiment's outputs (data/checkpoints among them) back to the baseline's before it runs, and runs
# queued or --temp experiments in a folder of their own, so only a place it never touches lets a
# killed `dvc exp run` resume (`mnist_dvc.training.loop.fit_resumable`). $XDG_CACHE_HOME moves it.
RESUME = Path(platformdirs.user_cache_dir("mnist-dvc")) / "resume"

MODEL = Path("data/model")
CHECKPOINTS = Path("data/checkpoints")
TRAIN = TrainOutputs(MODEL, CHECKPOINTS / "last.msgpack", Path("eval/train_history.csv"), Path("eval/train.json"))
# The training digits explanations search for neighbours (`mnist_dvc.analysis.explain.load_bank`): as the main model took them, as written, their labels.
EXPLAIN_BANK = (TRAIN_NPZ, RAW_TRAIN_IMAGES, RAW_TRAIN_LABELS)

EVAL = Path("data/eval")
PROBS_NPZ = EVAL / "probs.npz"
EXAMPLES_CSV = EVAL / "examples.csv"
EXAMPLES_DIR = EVAL / "examples"
EXAMPLES_PNG = EVAL / "examples.png"
METRICS_JSON = Path("eval/metrics.json")
PER_DIGIT_CSV = Path("eval/per_digit.csv")
SPEED_JSON = Path("eval/speed.json")
CONFUSION_CSV = Path("eval/confusion.csv")
RELIABILITY_CSV = Path("eval/reliability.csv")  # confidence against accuracy, before and after calibration

AMBIGUOUS = Path("data/ambiguous")
AMBIGUOUS_SUMMARY = AMBIGUOUS / "summary.json"
AMBIGUOUS_TABLE = "table.csv"  # in each definition's folder: what the model said about its digits
REVIEW_QUEUE_TEST = AMBIGUOUS / "review"  # the test digits' review queue from the main model (`mnist_dvc.analysis.review_queue`)

PREDICTIONS = Path("data/predictions")
PREDICTIONS_CSV = PREDICTIONS / "predictions.csv"
PREDICTIONS_SHEET = PREDICTIONS / "sheet.png"

COMMITTEE = Path("data/committee")
COMMITTEE_JSON = Path("eval/committee.json")

# The label audit (audit/dvc.yaml): one folder per cross-validation fold, then the ranked label issues.
AUDIT = Path("data/audit")
AUDIT_FOLDS = AUDIT / "folds"
AUDIT_TRAIN, AUDIT_TEST = AUDIT / "train", AUDIT / "test"  # issues.csv, quality.csv, pairs.csv, <index>.png of each split
AUDIT_TRAIN_ISSUES = AUDIT_TRAIN / "issues.csv"  # the flagged training digits, which the second training may leave out
AUDIT_TRAIN_QUALITY = AUDIT_TRAIN / "quality.csv"  # every training digit's label quality: the second training's hardest
AUDIT_TRAIN_PAIRS = AUDIT_TRAIN / "pairs.csv"  # flagged digits per (given, suggested) label
AUDIT_TEST_ISSUES = AUDIT_TEST / "issues.csv"  # the flagged test digits, which the second training is scored on
AUDIT_GALLERIES = AUDIT / "galleries"  # train.png, test.png
AUDIT_REVIEW = AUDIT / "review"  # review queues from the out-of-fold probabilities: <split>/queue.csv, pictures, gallery
AUDIT_JSON = Path("eval/audit.json")
RETRAIN = TrainOutputs.under(AUDIT / "retrain")  # the second training (audit/dvc.yaml stage `retrain`)
RETRAIN_JSON = Path("eval/retrain.json")

REGISTRY = Path("data/registry")  # models fetched by stage (mnist_dvc.release.registry): <commit>/model and <commit>/summary.json
EXPORT_ONNX = Path("data/export/model.onnx")  # data/model for onnxruntime (export/dvc.yaml)
EXPORT_JSON = Path("eval/export.json")  # the export's parity with JAX on the test digits, its size, opset and converter


@dataclass(frozen=True)
class AuditFold:
    """Where fold k of the audit writes: held-out and test probabilities, its resumable checkpoint, its curves."""

    probs: Path
    checkpoint: Path
    history: Path

    @classmethod
    def number(cls, fold: int) -> "AuditFold":
        folder = AUDIT_FOLDS / f"fold-{fold}"
        return cls(folder / "probs.npz", folder / "checkpoints" / "last.msgpack", folder / "train_history.csv")
