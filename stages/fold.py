"""Stage `fold` (audit/dvc.yaml, one per fold): out-of-sample probabilities for one fold of the
training digits, for the label audit.

The audit splits all training digits of the official file (the first `preprocess.train_subset` if
set; the preprocess stage's validation split plays no part), with the labels training uses
(data/prepared/train_labels.npz: after a person's verdicts when `preprocess.review` is on, without
the digits judged ambiguous; `mnist_dvc.audit.cross_validation.audited_digits`), into
`audit.folds` stratified folds seeded by `audit.seed` (`mnist_dvc.audit.cross_validation.fold_split`).
Fold k's model is the train stage's: the model and settings of the `train` section, but
`audit.epochs` epochs, trained with the same loop (`mnist_dvc.training.loop.fit_resumable`) on the
digits of the other folds, prepared exactly as the main model's (data/prepared/preparation.json),
and watched on a small validation slice of them. Cached
augmented copies (`preprocess.augment.copies`) are not made; `train.augment`'s fresh distortions
are. It then predicts fold k, which it never saw, and the prepared test set. A checkpoint after
every epoch lets a killed audit resume.

    python -m stages.fold 3

Outputs, under data/audit/folds/fold-<k>/: probs.npz (`positions` of the held-out digits in the
official file, their given `labels` and `probs` (n, 10); `test_probs` (test digits, 10)),
train_history.csv (one row per epoch), checkpoints/ (a DVC `persist` output).
"""

import argparse

from mnist_dvc.audit.cross_validation import audited_digits, fold_split
from mnist_dvc.config import paths
from mnist_dvc.config.params import CLASSICAL_MODELS, NEURAL_MODELS, check_train_fits, load_params
from mnist_dvc.digits.preparation import prepare
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import save_npz
from mnist_dvc.io.prepared_sets import load_test_set
from mnist_dvc.io.stage_outputs import read_json


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stages.fold", description="Trains the audit's model for one fold and predicts it.")
    parser.add_argument("fold", type=int, help="the fold to hold out, one of audit.folds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import jax

    from mnist_dvc.models.inference import PREDICT_BATCH, neural_classifier, predict_proba
    from mnist_dvc.training.loop import build_trainer, fingerprint, fit_resumable, report_divergence, write_curves

    fold = parse_args(argv).fold
    audit, train_subset = load_params("audit"), load_params("preprocess").train_subset
    cfg = load_params("train").model_copy(update={"epochs": audit.epochs})
    if cfg.model in CLASSICAL_MODELS:
        raise UserError(f"params.yaml: train.model = {cfg.model}: the audit trains networks only "
                        f"({', '.join(NEURAL_MODELS)}), with the train stage's checkpointed loop")
    if fold not in audit.folds:
        raise UserError(f"fold {fold}: not one of params.yaml's audit.folds = {audit.folds}")

    digits = audited_digits(paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS, paths.TRAIN_LABELS_NPZ, train_subset)
    labels = digits.labels
    try:
        train_at, val_at, held_out = fold_split(labels, len(audit.folds), fold, audit.seed)
    except ValueError as error:
        raise UserError(f"params.yaml: audit.folds = {audit.folds} ({len(audit.folds)} folds) for the {len(labels)} "
                        f"training digits (preprocess.train_subset = {train_subset}): {error}") from None
    check_train_fits(cfg, len(train_at), jax.device_count())
    preparation = read_json(paths.PREPARATION_JSON, "preprocess")
    prepared = prepare(digits.images, preparation)
    test = load_test_set(paths.TEST_NPZ)
    out = paths.AuditFold.number(fold)

    trainer = build_trainer(cfg, (prepared[train_at], labels[train_at]))
    print(f"fold {fold} of {len(audit.folds)}: {cfg.model} on {len(train_at):,} digits of the other folds for "
          f"{cfg.epochs} epochs, validated on {len(val_at):,} of them; {len(held_out):,} held out")
    run_id = fingerprint(cfg, [paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS, paths.TRAIN_LABELS_NPZ, paths.PREPARATION_JSON],
                         folds=len(audit.folds), fold=fold, seed=audit.seed, train_subset=train_subset)
    with report_divergence(f"fold {fold}", cfg):
        state, history = fit_resumable(trainer, (prepared[val_at], labels[val_at]), out.checkpoint, run_id)

    classifier = neural_classifier(trainer.eval_model(state))
    probs = predict_proba(classifier, prepared[held_out], PREDICT_BATCH)
    save_npz(out.probs, positions=digits.index[held_out], labels=labels[held_out], probs=probs,
             test_probs=predict_proba(classifier, test["images"], PREDICT_BATCH))
    write_curves(out.history, history)
    accuracy = float((probs.argmax(axis=1) == labels[held_out]).mean())
    print(f"fold {fold}: accuracy {accuracy:.4f} on its {len(held_out):,} held-out digits")


if __name__ == "__main__":
    run_stage(main)
