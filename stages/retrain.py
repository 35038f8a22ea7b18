"""Stage `retrain` (audit/dvc.yaml, after `audit`): the second training, which learns from what the
label audit found, and its score on the test set.

The `train` section's model and settings are trained again (`mnist_dvc.training.train_and_save`, resumable
like the train stage) on data/prepared/train.npz changed by `retrain`'s keys
(`mnist_dvc.audit.curation`): without the training digits the audit flags
(`retrain.exclude_label_issues`), and with the `retrain.hard_digits` hardest unflagged ones
oversampled `retrain.hard_copies` times, freshly distorted with `preprocess.augment`'s strengths and
`train.seed`. data/prepared/train.npz already carries a person's verdicts when `preprocess.review`
is on (corrected labels, no digit judged ambiguous), and the audit's folds trained on the same
labels, so the second training starts from the reviewed labels, never the official ones a person
overruled. Then it scores the prepared test set, and counts how many of the test digits the audit
flags as mislabelled it still "gets wrong" (predicts other than their given label): a model that
disagrees there is right where the label is not.

    dvc exp run audit/dvc.yaml -S retrain.exclude_label_issues=true -S retrain.hard_digits=2000

Outputs: data/audit/retrain/ (model/, checkpoints/ (persist), train_history.csv, train.json) and
eval/retrain.json (DVC metrics: what the curation changed, the training's own figures, the test figures).
"""

import numpy as np

from mnist_dvc.audit.curation import (
    ISSUE_KEYS,
    QUALITY_KEYS,
    AuditTableError,
    OtherDigits,
    check_same_digits,
    curated_training_set,
    read_audit_table,
)
from mnist_dvc.config import paths
from mnist_dvc.config.params import check_train_fits, load_params
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import write_json
from mnist_dvc.io.prepared_sets import load_index, load_split, load_test_set
from mnist_dvc.io.stage_outputs import read_json

RUN_AUDIT = "run the label audit first: dvc repro audit/dvc.yaml"


def audit_table_error(error: AuditTableError) -> UserError:
    """The one line for an audit table this stage cannot use: the file, what is wrong, and the command that remakes it."""
    problem = error.problem
    if isinstance(error, OtherDigits):
        problem = f"made for other training digits than {paths.TRAIN_NPZ} ({error.difference}; another preprocess.train_subset?)"
    return UserError(f"{error.path}: {problem}; {RUN_AUDIT}")


def main() -> None:
    import jax

    from mnist_dvc.analysis.metrics import score_on_test
    from mnist_dvc.models.saved import load_classifier
    from mnist_dvc.training.loop import fingerprint, report_divergence
    from mnist_dvc.training.train_and_save import train_model

    retrain, cfg = load_params("retrain"), load_params("train")
    strengths = load_params("preprocess").augment.model_dump(exclude={"copies"})
    images, labels = load_split(paths.TRAIN_NPZ)
    index = load_index(paths.TRAIN_NPZ, len(labels))
    try:
        flagged = read_audit_table(paths.AUDIT_TRAIN_ISSUES, ISSUE_KEYS)["index"].to_numpy()
        quality = check_same_digits(index, labels, read_audit_table(paths.AUDIT_TRAIN_QUALITY, QUALITY_KEYS), paths.AUDIT_TRAIN_QUALITY)
        test_flagged = read_audit_table(paths.AUDIT_TEST_ISSUES, ISSUE_KEYS)["index"].to_numpy()
    except AuditTableError as error:
        raise audit_table_error(error) from None
    try:
        train_images, train_labels, curation = curated_training_set(
            images, labels, index, flagged=flagged, quality=quality, exclude_label_issues=retrain.exclude_label_issues,
            hard_digits=retrain.hard_digits, hard_copies=retrain.hard_copies, rng=np.random.default_rng(cfg.seed), strengths=strengths)
    except ValueError as error:
        raise UserError(f"params.yaml: retrain.hard_digits = {retrain.hard_digits}: {error}") from None
    print(f"retrain: {curation['left_out_images']:,} images of {curation['left_out_digits']} flagged digits left out, "
          f"{curation['added_images']:,} distorted copies of the {curation['oversampled_digits']:,} hardest added: "
          f"{curation['training_images']:,} training images")

    check_train_fits(cfg, len(train_labels), jax.device_count())
    run_id = fingerprint(cfg, [paths.TRAIN_NPZ, paths.VAL_NPZ, paths.AUDIT_TRAIN_ISSUES, paths.AUDIT_TRAIN_QUALITY],
                         retrain=retrain.model_dump(mode="json"), strengths=strengths)
    with report_divergence("retrain", cfg):
        training = train_model(cfg, (train_images, train_labels), load_split(paths.VAL_NPZ), paths.RETRAIN,
                               read_json(paths.PREPARATION_JSON, "preprocess"), run_id)

    test = load_test_set(paths.TEST_NPZ)
    scores = score_on_test(load_classifier(paths.RETRAIN.model), test, test_flagged)
    write_json(paths.RETRAIN_JSON, {**curation, "training": training, "test": scores})
    print(f"retrain: test accuracy {scores['accuracy']:.4f} ({scores['errors']} errors); "
          f"{scores['label_issues_predicted_otherwise']} of the {scores['label_issues']} test digits the audit flags predicted otherwise than labelled")


if __name__ == "__main__":
    run_stage(main)
