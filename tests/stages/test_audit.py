"""The label audit: the audit stage on planted label issues, and the whole audit pipeline run by DVC
(`dvc repro audit/dvc.yaml`) on a small slice. (Folds are tests/unit/audit/test_cross_validation.py's.) (One fold's training is tests/stages/test_fold.py's.)"""

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mnist_dvc.analysis.label_issues import QUALITY_COLUMNS
from mnist_dvc.audit.cross_validation import fold_split
from mnist_dvc.audit.issue_tables import AUDIT_COLUMNS
from mnist_dvc.config import paths
from mnist_dvc.digits.preparation import prepare
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz, write_json
from mnist_dvc.io.queue_format import QUEUE_COLUMNS, QUEUE_CSV
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import save_neural
from stages import audit as audit_stage

# --- the audit stage, on fold outputs with planted label issues ---------------------------------

TRAIN_DIGITS, TEST_DIGITS, FOLDS = 1000, 300, 3
# Digits whose model confidently says another digit than their label, as for mislabelled ones: 2% of the
# training digits, 4% of the test digits. Confident learning flags most of them (it calibrates how many
# per pair of digits, and rounding drops a few of so few) and nothing else.
PLANTED = list(range(7, TRAIN_DIGITS, 50))
PLANTED_TEST = list(range(7, TEST_DIGITS, 25))
BANK_DIGITS = 900  # the main model's training digits


def model_like(labels: np.ndarray, planted: list[int], rng) -> np.ndarray:
    """Probabilities of a good model: most mass on the given label, except at `planted`, where it
    confidently names the next digit instead (as for a mislabelled digit)."""
    says = np.asarray(labels).astype(np.int64).copy()
    says[planted] = (says[planted] + 1) % 10
    logits = 6.0 * np.eye(10)[says] + rng.standard_normal((len(labels), 10))
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


PREPARATION = {"deskew": True, "stroke_width": None}  # model inputs unlike the digits as written
QUEUE_TRAIN, QUEUE_TEST = 40, 10  # review.top


def write_folds(root, official: np.ndarray, labels_in_use: np.ndarray) -> None:
    """train_labels.npz holding `labels_in_use` (the preprocess stage's: after the verdicts, -1 for
    a digit left out) and the three folds' outputs over the digits left, as the fold stage writes
    them, from the simulated model (which sees the digits, whatever their labels say)."""
    save_npz(root / paths.TRAIN_LABELS_NPZ, index=np.arange(TRAIN_DIGITS), labels=labels_in_use)
    kept = np.flatnonzero(labels_in_use >= 0)
    rng = np.random.default_rng(0)
    train_probs = model_like(official[:TRAIN_DIGITS], PLANTED, rng)
    test = slice(TRAIN_DIGITS, TRAIN_DIGITS + TEST_DIGITS)
    for fold in range(FOLDS):
        held_out = kept[fold_split(labels_in_use[kept], FOLDS, fold, seed=0)[2]]
        save_npz(root / paths.AuditFold.number(fold).probs, positions=held_out, labels=labels_in_use[held_out],
                 probs=train_probs[held_out], test_probs=model_like(official[test], PLANTED_TEST, rng))


@pytest.fixture
def audited(tmp_path, monkeypatch, repo_root, mnist_mirror, mnist_train, edit_params):
    """A project whose three folds' outputs are written as the fold stage would, from a simulated model.
    Its digits are deskewed for the model (`PREPARATION`), so a picture tells a digit as written from
    the digit as the model took it."""
    for path in (paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).symlink_to(mnist_mirror / path.name)
    images, labels = mnist_train
    test = slice(TRAIN_DIGITS, TRAIN_DIGITS + TEST_DIGITS)
    save_npz(tmp_path / paths.TEST_NPZ, images=prepare(images[test], PREPARATION), labels=labels[test], original=images[test],
             index=np.arange(TEST_DIGITS) + 5000)
    (tmp_path / "params.yaml").write_text((repo_root / "params.yaml").read_text())
    edit_params(tmp_path, {"preprocess.train_subset": TRAIN_DIGITS, "preprocess.val_size": 100,
                           "audit.folds": list(range(FOLDS)), "audit.top_n": 3, "review.top.train": QUEUE_TRAIN, "review.top.test": QUEUE_TEST})
    write_folds(tmp_path, labels, labels[:TRAIN_DIGITS].astype(np.int64))
    # For the explained galleries: the main model (untrained here), its training digits (the first
    # BANK_DIGITS, the rest playing its validation digits) and their preparation.
    model = build_model("vgg_bn", width=4, rngs=init_rngs(0))
    model.eval()
    save_neural(tmp_path / paths.MODEL, model, "vgg_bn", 4, PREPARATION)
    save_npz(tmp_path / paths.TRAIN_NPZ, images=prepare(images[:BANK_DIGITS], PREPARATION), labels=labels[:BANK_DIGITS],
             index=np.arange(BANK_DIGITS))
    write_json(tmp_path / paths.PREPARATION_JSON, PREPARATION)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_stage_ranks_the_planted_issues_and_shows_each_flagged_digit(audited, mnist_train):
    audit_stage.main()
    images, labels = mnist_train
    prepared = prepare(images[: TRAIN_DIGITS + TEST_DIGITS], PREPARATION)  # the digits as the model took them
    issues = {split: pd.read_csv(audited / "data/audit" / split / "issues.csv") for split in ("train", "test")}
    # (split, planted positions, index of its first digit, where its digits lie in the training file here)
    for split, planted, offset, start in (("train", PLANTED, 0, 0), ("test", PLANTED_TEST, 5000, TRAIN_DIGITS)):
        table = issues[split]
        assert list(table.columns) == AUDIT_COLUMNS and set(table["split"]) == {split}
        assert set(table["index"]) <= {i + offset for i in planted} and len(table) >= 0.6 * len(planted)
        assert table["rank"].tolist() == list(range(1, len(table) + 1))
        assert table["label_quality"].is_monotonic_increasing and table["label_quality"].lt(0.05).all()
        for row in table.itertuples():
            at = row.index - offset + start
            assert row.given_label == labels[at] and row.suggested_label == (row.given_label + 1) % 10
            picture = np.asarray(Image.open(audited / "data/audit" / split / f"{row.index}.png"))
            assert not np.array_equal(prepared[at], images[at])  # so the picture tells which it is
            np.testing.assert_array_equal(picture[::4, ::4], images[at])  # the digit as written, 4x larger
        assert sorted(p.name for p in (audited / "data/audit" / split).glob("*.png")) == sorted(f"{i}.png" for i in table["index"])
        pairs = pd.read_csv(audited / "data/audit" / split / "pairs.csv")
        assert pairs["count"].sum() == len(table)
        quality = pd.read_csv(audited / "data/audit" / split / "quality.csv", index_col="index")  # every digit, flagged or not
        assert list(quality.columns) == QUALITY_COLUMNS[1:] and len(quality) == (TRAIN_DIGITS if split == "train" else TEST_DIGITS)
        np.testing.assert_allclose(quality.loc[table["index"], "label_quality"], table["label_quality"])
        assert quality.loc[table["index"], "suggested_label"].tolist() == table["suggested_label"].tolist()
        assert (audited / "data/audit/galleries" / f"{split}.png").read_bytes().startswith(b"\x89PNG")

    metrics = json.loads((audited / paths.AUDIT_JSON).read_text())
    assert metrics["folds"] == FOLDS
    assert metrics["train"] == {"digits": TRAIN_DIGITS, "flagged": len(issues["train"]),
                                "out_of_fold_accuracy": 1 - len(PLANTED) / TRAIN_DIGITS}
    assert metrics["test"]["digits"] == TEST_DIGITS and metrics["test"]["flagged"] == len(issues["test"])
    assert metrics["test"]["accuracy"] == pytest.approx(1 - len(PLANTED_TEST) / TEST_DIGITS, abs=0.01)


def test_explained_galleries_show_each_flagged_digit_once_never_as_its_own_neighbour(audited, mnist_train, digit_places, capsys):
    audit_stage.main()
    images = mnist_train[0]
    prepared = prepare(images[: TRAIN_DIGITS + TEST_DIGITS], PREPARATION)  # the digits as the model took them
    every = sum(len(set(pd.read_csv(audited / "data/audit" / split / "issues.csv")["index"].head(3))
                    | set(pd.read_csv(audited / paths.AUDIT_REVIEW / split / "queue.csv")["index"])) for split in ("train", "test"))
    assert f"explained {every} flagged and queued digits against 900 training digits" in capsys.readouterr().out  # each once
    for split, start in (("train", 0), ("test", TRAIN_DIGITS - 5000)):
        shown = pd.read_csv(audited / "data/audit" / split / "issues.csv")["index"].head(3)
        with Image.open(audited / "data/audit/galleries" / f"{split}-explained.png") as image:
            page = np.asarray(image.convert("RGB"))
        places = [digit_places(page, images[index + start]) for index in shown]
        # Once each, as written (never as the model took it), in the first place of its row, in rank order; a training
        # digit is in the bank, with its own (given) label, but never among its own neighbours.
        assert all(len(found) == 1 and found[0][1] < 40 for found in places)
        assert not any(digit_places(page, prepared[index + start]) for index in shown)
        assert [found[0][0] for found in places] == sorted(found[0][0] for found in places)
        if split == "train":  # most in the bank (the case that matters), one (#907) not
            assert (shown < BANK_DIGITS).sum() >= 2


def test_each_split_gets_a_review_queue_its_flagged_digits_first_each_as_written_and_explained(audited, mnist_train, digit_places):
    audit_stage.main()
    images = mnist_train[0]
    prepared = prepare(images[: TRAIN_DIGITS + TEST_DIGITS], PREPARATION)
    for split, length, start in (("train", QUEUE_TRAIN, 0), ("test", QUEUE_TEST, TRAIN_DIGITS - 5000)):
        folder = audited / paths.AUDIT_REVIEW / split
        table = pd.read_csv(folder / QUEUE_CSV, keep_default_na=False)
        issues = pd.read_csv(audited / "data/audit" / split / "issues.csv")
        assert list(table.columns) == QUEUE_COLUMNS and len(table) == length and set(table["split"]) == {split}
        flagged = min(len(issues), length)
        assert table["index"].tolist()[:flagged] == issues["index"].tolist()[:flagged]  # the audit's order
        assert table["flagged"].tolist() == [True] * flagged + [False] * (length - flagged)
        np.testing.assert_allclose(table["label_quality"][:flagged], issues["label_quality"][:flagged])
        assert table["label_quality"][flagged:].is_monotonic_increasing
        quality = pd.read_csv(audited / "data/audit" / split / "quality.csv", index_col="index")
        np.testing.assert_allclose(table["label_quality"], quality.loc[table["index"], "label_quality"], atol=1e-6)
        assert sorted(p.name for p in folder.iterdir()) == ["digits", "explained", "gallery.png", "queue.csv"]
        for row in table.itertuples():
            with Image.open(folder / row.digit) as image:
                np.testing.assert_array_equal(np.asarray(image)[::4, ::4], images[row.index + start])
        for row in table.head(3).itertuples():  # one explained picture per digit: the digit as written, never as the model took it
            with Image.open(folder / row.explained) as image:
                page = np.asarray(image.convert("RGB"))
            assert len(digit_places(page, images[row.index + start])) == 1 and not digit_places(page, prepared[row.index + start])
        assert len(list((folder / "explained").iterdir())) == length


def test_the_audit_uses_the_labels_training_uses_and_queues_no_digit_a_person_corrected(audited, mnist_train, capsys):
    """train_labels.npz with a person's verdicts: a planted flip corrected to what the model says (no
    longer an issue), another corrected to a third digit (still doubted, with its corrected label,
    but not queued again), a digit judged ambiguous (left out: no fold holds it, nor does any table)."""
    official = mnist_train[1]
    labels = official[:TRAIN_DIGITS].astype(np.int64)
    fixed, disputed, unreadable = PLANTED[0], PLANTED[2], PLANTED[4]
    labels[fixed], labels[disputed], labels[unreadable] = (labels[fixed] + 1) % 10, (labels[disputed] + 2) % 10, -1
    write_folds(audited, official, labels)
    audit_stage.main()
    issues = pd.read_csv(audited / paths.AUDIT_TRAIN_ISSUES)
    quality = pd.read_csv(audited / paths.AUDIT_TRAIN_QUALITY, index_col="index")
    assert len(quality) == TRAIN_DIGITS - 1 and unreadable not in quality.index and unreadable not in issues["index"].tolist()
    assert quality.loc[fixed, "given_label"] == labels[fixed] and quality.loc[fixed, "label_quality"] > 0.5
    assert fixed not in issues["index"].tolist()
    # Its label in use doubted as much as any flagged digit's, which would put it at the queue's top.
    assert quality.loc[disputed, "given_label"] == labels[disputed] and quality.loc[disputed, "label_quality"] < 0.05
    queue = pd.read_csv(audited / paths.AUDIT_REVIEW / "train" / QUEUE_CSV)
    assert len(queue) == QUEUE_TRAIN and not {fixed, disputed, unreadable} & set(queue["index"])
    np.testing.assert_array_equal(queue["given_label"], official[queue["index"]])  # every queued label the official one
    assert json.loads((audited / paths.AUDIT_JSON).read_text())["train"]["digits"] == TRAIN_DIGITS - 1


def test_a_scikit_learn_main_model_gets_no_explained_galleries_and_says_why(audited, capsys):
    (audited / paths.MODEL / "model.json").write_text('{"model": "svc", "preparation": {"deskew": false, "stroke_width": null}}')
    audit_stage.main()
    assert sorted(p.name for p in (audited / "data/audit/galleries").iterdir()) == ["test.png", "train.png"]
    for split in ("train", "test"):
        assert not (audited / paths.AUDIT_REVIEW / split / "explained").exists()
        assert pd.read_csv(audited / paths.AUDIT_REVIEW / split / "queue.csv", keep_default_na=False)["explained"].eq("").all()
    assert "explained galleries skipped: data/model holds a scikit-learn model (svc)" in capsys.readouterr().out


def test_folds_made_for_other_digits_or_missing_are_named(audited, edit_params, mnist_train):
    edit_params(audited, {"preprocess.train_subset": 900})  # the folds were made for 1,000 digits, preprocess reran for 900
    save_npz(audited / paths.TRAIN_LABELS_NPZ, index=np.arange(900), labels=mnist_train[1][:900].astype(np.int64))
    with pytest.raises(UserError, match=r"^data/audit/folds/fold-\d/probs\.npz: made for other digits than these; rerun the audit"):
        audit_stage.main()
    edit_params(audited, {"preprocess.train_subset": TRAIN_DIGITS, "audit.folds": list(range(FOLDS + 1))})
    save_npz(audited / paths.TRAIN_LABELS_NPZ, index=np.arange(TRAIN_DIGITS), labels=mnist_train[1][:TRAIN_DIGITS].astype(np.int64))
    with pytest.raises(UserError, match=r"data/audit/folds/fold-3/probs\.npz: not found; run the audit fold@3 stage first"):
        audit_stage.main()
    assert not (audited / "data/audit/train").exists() and not (audited / paths.AUDIT_JSON).exists()


# --- the audit pipeline, end to end -------------------------------------------------------------

E2E = {
    "preprocess.train_subset": 2000, "preprocess.test_subset": 500, "preprocess.val_size": 200,
    "train.width": 8, "train.batch_size": 16, "train.schedule": "constant", "train.learning_rate": 0.01,
    "audit.folds": [0, 1], "audit.epochs": 4, "audit.top_n": 5, "train.epochs": 4,
}  # 4 epochs of 56 steps: about 80% out of fold, for 2 s more than 1 epoch (most of a fold's time is compiling)


@pytest.mark.e2e
def test_dvc_repro_runs_every_fold_then_the_audit_and_a_rerun_does_nothing(make_project, stage_env, edit_params, tmp_path):
    import subprocess

    root = make_project(tmp_path / "project", git=True)
    edit_params(root, E2E)

    def dvc(*args: str) -> str:
        result = subprocess.run(["dvc", *args], cwd=root, env=stage_env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    output = dvc("repro", "audit/dvc.yaml")
    ran = re.findall(r"Running stage '([^']+)'", output)
    assert ran[:2] == ["download", "preprocess"] and ran[-2:] == ["audit/dvc.yaml:audit", "audit/dvc.yaml:retrain"]
    # DVC orders sibling stages freely; the main model (train) is the explained galleries'
    assert sorted(ran[2:-2]) == ["audit/dvc.yaml:fold@0", "audit/dvc.yaml:fold@1", "train"]

    metrics = json.loads((root / paths.AUDIT_JSON).read_text())
    assert metrics["folds"] == 2 and metrics["train"]["digits"] == 2000 and metrics["test"]["digits"] == 500
    assert metrics["train"]["out_of_fold_accuracy"] > 0.6 and metrics["test"]["accuracy"] > 0.6  # 10% is chance
    with np.load(root / paths.AuditFold.number(0).probs) as zero, np.load(root / paths.AuditFold.number(1).probs) as one:
        assert sorted(np.concatenate([zero["positions"], one["positions"]])) == list(range(2000))
    for split, digits in (("train", 2000), ("test", 500)):
        table = pd.read_csv(root / "data/audit" / split / "issues.csv")
        assert list(table.columns) == AUDIT_COLUMNS
        assert len(table) == metrics[split]["flagged"] and len(table) < digits / 10
        assert table["index"].between(0, digits - 1).all() and (table["given_label"] != table["suggested_label"]).mean() > 0.5
        assert all((root / "data/audit" / split / f"{i}.png").is_file() for i in table["index"])
        assert (root / "data/audit/galleries" / f"{split}.png").stat().st_size > 0
        assert (root / "data/audit/galleries" / f"{split}-explained.png").stat().st_size > 0
        assert len(pd.read_csv(root / "data/audit" / split / "quality.csv")) == digits
        queue = pd.read_csv(root / paths.AUDIT_REVIEW / split / "queue.csv")  # review.top's defaults: 300 and 100
        assert len(queue) == (300 if split == "train" else 100) and queue["index"].between(0, digits - 1).all()
        assert all((root / paths.AUDIT_REVIEW / split / name).is_file() for name in (*queue["digit"], *queue["explained"]))
    assert metrics["train"]["flagged"] > 0  # models this weak always find digits they doubt
    assert "resuming" not in output

    assert re.findall(r"Running stage '([^']+)'", dvc("repro", "audit/dvc.yaml")) == []
    edit_params(root, {"audit.top_n": 3, "review.top.train": 20})  # galleries and queues only: no fold trains again, nor the second training
    assert re.findall(r"Running stage '([^']+)'", dvc("repro", "audit/dvc.yaml")) == ["audit/dvc.yaml:audit"]

    # The second training, changed: it reads the audit's tables and leaves out the flagged digits.
    edit_params(root, {"retrain.exclude_label_issues": True, "retrain.hard_digits": 0})
    output = dvc("repro", "audit/dvc.yaml")
    assert re.findall(r"Running stage '([^']+)'", output) == ["audit/dvc.yaml:retrain"]
    second = json.loads((root / paths.RETRAIN_JSON).read_text())
    with np.load(root / paths.TRAIN_NPZ) as train:  # flagged digits of the validation split stay there
        flagged_in_training = np.isin(pd.read_csv(root / paths.AUDIT_TRAIN_ISSUES)["index"], train["index"]).sum()
    assert second["left_out_digits"] == flagged_in_training > 0 and second["test"]["label_issues"] == metrics["test"]["flagged"]
    assert second["test"]["accuracy"] > 0.6
