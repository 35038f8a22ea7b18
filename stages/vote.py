"""Stage `vote` (committee/dvc.yaml): the committee's test accuracy from its members' averaged
probabilities (`mnist_dvc.analysis.committee`).

Members are the <model>-<seed> folders under data/committee that the `member` stages trained,
read from the `committee` params, not from whatever folders exist, so a member dropped from the
list is dropped from the vote. With `committee.tta` every member also sees each digit shifted one
pixel four ways (as `evaluate.tta`).

Output: eval/committee.json (DVC metrics): the committee's accuracy, loss, errors and macro F1,
and each member's own accuracy, so `dvc metrics show` shows what the committee adds.
"""

from mnist_dvc.analysis.committee import member_names, vote
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.errors import run_stage
from mnist_dvc.io.atomic import write_json
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.models.inference import PREDICT_BATCH, predict_proba
from mnist_dvc.models.saved import load_classifier


def main() -> None:
    cfg = load_params("committee")
    test = load_test_set(paths.TEST_NPZ)
    member_probs = {
        name: predict_proba(load_classifier(paths.TrainOutputs.under(paths.COMMITTEE / name).model), test["images"], PREDICT_BATCH, cfg.tta)
        for name in member_names(cfg.models, cfg.seeds)
    }
    scores = vote(member_probs, test["labels"])
    write_json(paths.COMMITTEE_JSON, scores)
    print(f"committee of {len(member_probs)}: test accuracy {scores['accuracy']:.4f} "
          f"({scores['errors']} errors); members' median {scores['member_accuracy_median']:.4f}")


if __name__ == "__main__":
    run_stage(main)
