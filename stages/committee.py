"""Stage `vote` of committee/dvc.yaml: the committee's test accuracy, from the average of its
members' probabilities.

Each member (stage `member@<model>-<seed>`) is the train stage run with another model and seed,
its model in data/committee/<model>-<seed>/model. Averaging probabilities rather than counting
votes lets a confident member outweigh two unsure ones, and ties cannot happen. Members are read
from the `committee` params, not from whatever folders exist, so a member dropped from the list
is dropped from the vote. With `committee.tta` every member also sees each digit shifted one pixel
four ways (as `evaluate.tta`).

Output: eval/committee.json (DVC metrics): the committee's accuracy, loss and errors, and each
member's own accuracy, so `dvc metrics show` shows what the committee adds.
"""

from pathlib import Path

import numpy as np

from stages.atomic import write_json
from stages.errors import run_stage
from stages.evaluate import load_test_set
from stages.metrics import summarize
from stages.params import Committee, load_params
from stages.predict import load_classifier, predict_proba

MEMBERS_DIR = Path("data/committee")
METRICS_JSON = Path("eval/committee.json")
PREDICT_BATCH = 500  # one compiled shape per member; large enough that inference is cheap


def member_names(cfg: Committee) -> list[str]:
    """The folder name of each member, as committee/dvc.yaml's matrix builds it: <model>-<seed>."""
    return [f"{model}-{seed}" for model in cfg.models for seed in cfg.seeds]


def vote(member_probs: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """The committee's scores from the mean of the members' probabilities, and each member's accuracy."""
    committee = summarize(np.mean(list(member_probs.values()), axis=0), labels)
    members = {name: summarize(probs, labels)["accuracy"] for name, probs in member_probs.items()}
    return {
        **{key: committee[key] for key in ("accuracy", "loss", "errors", "macro_f1")},
        "member_accuracy_median": float(np.median(list(members.values()))),
        "members": members,
    }


def main() -> None:
    cfg = load_params("committee")
    test = load_test_set()
    member_probs = {
        name: predict_proba(load_classifier(MEMBERS_DIR / name / "model"), test["images"], PREDICT_BATCH, cfg.tta)
        for name in member_names(cfg)
    }
    scores = vote(member_probs, test["labels"])
    write_json(METRICS_JSON, scores)
    print(f"committee of {len(member_probs)}: test accuracy {scores['accuracy']:.4f} "
          f"({scores['errors']} errors); members' median {scores['member_accuracy_median']:.4f}")


if __name__ == "__main__":
    run_stage(main)
