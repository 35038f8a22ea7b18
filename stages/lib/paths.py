"""Where each stage reads and writes, declared once: the stage scripts import these, and
tests/test_dvc_yaml.py checks that every `dvc.yaml` path under data/ and eval/ is one of them."""

from dataclasses import dataclass
from pathlib import Path

RAW = Path("data/raw")
PREPARED = Path("data/prepared")
TRAIN_NPZ, VAL_NPZ, TEST_NPZ = (PREPARED / f"{split}.npz" for split in ("train", "val", "test"))
PREPARATION_JSON = PREPARED / "preparation.json"  # how the digits were prepared, for preparing new ones alike
DIGIT_COUNTS_CSV = Path("eval/digit_counts.csv")



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


MODEL = Path("data/model")
CHECKPOINTS = Path("data/checkpoints")
TRAIN = TrainOutputs(MODEL, CHECKPOINTS / "last.msgpack", Path("eval/train_history.csv"), Path("eval/train.json"))

EVAL = Path("data/eval")
PROBS_NPZ = EVAL / "probs.npz"
EXAMPLES_CSV = EVAL / "examples.csv"
EXAMPLES_DIR = EVAL / "examples"
EXAMPLES_PNG = EVAL / "examples.png"
METRICS_JSON = Path("eval/metrics.json")
PER_DIGIT_CSV = Path("eval/per_digit.csv")
SPEED_JSON = Path("eval/speed.json")
CONFUSION_CSV = Path("eval/confusion.csv")

AMBIGUOUS = Path("data/ambiguous")
AMBIGUOUS_SUMMARY = AMBIGUOUS / "summary.json"

PREDICTIONS = Path("data/predictions")

COMMITTEE = Path("data/committee")
COMMITTEE_JSON = Path("eval/committee.json")
