"""The ambiguous stage run for real in a temporary project folder, on hand-written inputs."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz
from mnist_dvc.io.queue_format import QUEUE_COLUMNS, QUEUE_CSV
from mnist_dvc.models import classical
from mnist_dvc.models.networks import build_model, init_rngs
from mnist_dvc.models.saved import save_classical, save_neural
from stages import ambiguous

N = 30
TEST_INDEX = np.arange(1200, 1200 + N, dtype=np.int64)  # not 0..N-1, so file names prove the mapping
BANK = 400  # training digits in train.npz, each followed by a copy
TEMPERATURE = 0.417303  # as evaluate writes it to eval/metrics.json
DEFINITIONS = ["confident_wrong", "least_confident", "smallest_margin", "highest_entropy", "label_issues"]
QUEUE = 8  # review.top.test


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root, mnist_mirror, mnist_train, edit_params):
    """A folder with params.yaml (top_n = 5, a review queue of 8), test.npz (the model inputs the inverted originals, so that
    a picture of either tells which it is), probs.npz (3 errors among 30 digits) and
    eval/metrics.json (the temperature that calibrated them); and, for the explanations, an
    untrained vgg_bn as the model, train.npz holding the first 400 training digits and a copy of
    each, and data/raw linked to the official files."""
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    edit_params(tmp_path, {"ambiguous.top_n": 5, "review.top.test": QUEUE})
    rng = np.random.default_rng(0)
    labels = (np.arange(N) % 10).astype(np.uint8)
    predictions = labels.copy()
    predictions[[4, 11, 25]] = [9, 7, 0]
    probs = rng.dirichlet(np.full(10, 0.3), size=N).astype(np.float32) * 0.3
    probs[np.arange(N), predictions] += 0.7
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data" / "eval").mkdir(parents=True)
    original = rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    # The model's inputs unlike the digits as written (inverted here), so a picture tells which it shows.
    np.savez(tmp_path / "data/prepared/test.npz", images=255 - original, labels=labels, original=original, index=TEST_INDEX)
    np.savez(tmp_path / "data/eval/probs.npz", probs=probs, labels=labels, index=TEST_INDEX)
    (tmp_path / "eval").mkdir()
    (tmp_path / paths.METRICS_JSON).write_text(json.dumps({"accuracy": 0.9, "temperature": TEMPERATURE}))
    model = build_model("vgg_bn", width=4, rngs=init_rngs(0))
    model.eval()
    save_neural(tmp_path / paths.MODEL, model, "vgg_bn", 4, {"deskew": False, "stroke_width": None})
    images, train_labels = mnist_train
    save_npz(tmp_path / paths.TRAIN_NPZ, images=np.concatenate([images[:BANK], 255 - images[:BANK]]),
             labels=np.tile(train_labels[:BANK], 2), index=np.tile(np.arange(BANK), 2))
    for path in (paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).symlink_to(mnist_mirror / path.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_writes_every_definition_with_pngs_named_by_test_index(project):
    ambiguous.main()
    out = project / "data" / "ambiguous"
    definitions = DEFINITIONS
    assert sorted(p.name for p in out.iterdir()) == sorted(definitions + ["galleries", "review", "summary.json"])
    assert sorted(p.name for p in (out / "galleries").iterdir()) == sorted([f"{d}.png" for d in definitions] +
                                                                          [f"{d}-explained.png" for d in definitions])
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary) == sorted(definitions + ["temperature"])
    assert summary["temperature"] == TEMPERATURE  # the one probs.npz was calibrated with, for judging new digits alike
    for name in definitions:
        table = pd.read_csv(out / name / "table.csv")
        if name == "label_issues":  # some of the three errors: those confident learning counts as mislabelled
            assert 0 < len(table) <= 3
        else:
            assert len(table) == (3 if name == "confident_wrong" else 5)  # only three errors exist
        assert table["index"].tolist() == [row["index"] for row in summary[name]["digits"]]
        pngs = {p.name for p in (out / name).glob("*.png")}
        assert pngs == {f"{index}.png" for index in table["index"]}
        assert table["index"].between(1200, 1200 + N - 1).all()
    assert {int(row["index"]) for row in summary["confident_wrong"]["digits"]} == {1204, 1211, 1225}
    assert {int(row["index"]) for row in summary["label_issues"]["digits"]} <= {1204, 1211, 1225}
    assert summary["label_issues"]["description"].startswith("Digits whose label is probably wrong:")
    assert not any(p.name.startswith(".") for p in (project / "data").iterdir())  # no temporary folder left


def test_every_png_holds_the_test_digit_as_written_not_as_the_model_took_it(project):
    """The PNGs show the digit as written (test.npz's `original`), not the prepared model input; the
    fixture's inputs differ from the originals, so a PNG of the wrong one fails."""
    ambiguous.main()
    summary = json.loads((project / "data/ambiguous/summary.json").read_text())
    with np.load(project / "data/prepared/test.npz") as test:
        originals, inputs = test["original"], test["images"]
    for name in DEFINITIONS:
        for digit in summary[name]["digits"]:
            original, model_input = originals[digit["index"] - 1200], inputs[digit["index"] - 1200]
            assert not np.array_equal(original, model_input)
            with Image.open(project / f"data/ambiguous/{name}/{digit['index']}.png") as image:
                np.testing.assert_array_equal(np.asarray(image)[::4, ::4], original, err_msg=f"{name}/{digit['index']}.png")


def test_same_inputs_give_identical_outputs(project):
    ambiguous.main()
    before = {p.relative_to(project): p.read_bytes() for p in (project / "data/ambiguous").rglob("*") if p.is_file()}
    ambiguous.main()
    after = {p.relative_to(project): p.read_bytes() for p in (project / "data/ambiguous").rglob("*") if p.is_file()}
    assert before == after


def test_every_shown_digit_is_explained_in_one_pass_a_row_each_in_the_definition_s_order(project, capsys, digit_places):
    ambiguous.main()
    summary = json.loads((project / "data/ambiguous/summary.json").read_text())
    every = {digit["index"] for name in DEFINITIONS for digit in summary[name]["digits"]}
    every |= set(pd.read_csv(project / paths.REVIEW_QUEUE_TEST / "queue.csv")["index"])
    assert f"explained {len(every)} digits against {BANK} training digits" in capsys.readouterr().out  # the copies left out
    with np.load(project / "data/prepared/test.npz") as test:
        originals, inputs = test["original"], test["images"]
    for name in DEFINITIONS:
        with Image.open(project / "data/ambiguous/galleries" / f"{name}-explained.png") as image:
            page = np.asarray(image.convert("RGB"))
        places = [digit_places(page, originals[digit["index"] - 1200]) for digit in summary[name]["digits"]]
        assert all(len(found) == 1 for found in places)  # each digit once: as written, in its row's first place
        assert not any(digit_places(page, inputs[digit["index"] - 1200]) for digit in summary[name]["digits"])  # never as the model took it
        (left,) = {found[0][1] for found in places}
        tops = [found[0][0] for found in places]
        assert tops == sorted(tops) and left < 40


def test_the_review_queue_holds_the_flagged_test_digits_first_each_as_written_and_explained(project, digit_places, capsys):
    """The queue of `review.top.test` digits: the digits confident learning flags (the label_issues
    definition's, in its order) first, then the lowest label quality; each digit's picture as
    written, and one explained picture per digit, showing it as written, never as the model took it."""
    ambiguous.main()
    folder = project / paths.REVIEW_QUEUE_TEST
    table = pd.read_csv(folder / QUEUE_CSV, keep_default_na=False)
    assert list(table.columns) == QUEUE_COLUMNS and len(table) == QUEUE and set(table["split"]) == {"test"}
    summary = json.loads((project / "data/ambiguous/summary.json").read_text())
    flagged = [digit["index"] for digit in summary["label_issues"]["digits"]]
    assert table["index"].tolist()[: len(flagged)] == flagged and table["flagged"].tolist() == [True] * len(flagged) + [False] * (QUEUE - len(flagged))
    with np.load(project / "data/eval/probs.npz") as saved:
        probs, labels = saved["probs"], saved["labels"]
    at = table["index"].to_numpy() - 1200
    np.testing.assert_allclose(table["label_quality"], probs[at, labels[at]], atol=1e-6)
    assert table["label_quality"][len(flagged):].is_monotonic_increasing
    assert (table["label_quality"][len(flagged):] >= 0).all() and (table["given_label"] == labels[at]).all()
    with np.load(project / "data/prepared/test.npz") as test:
        originals, inputs = test["original"], test["images"]
    for row in table.itertuples():
        with Image.open(folder / row.digit) as image:
            np.testing.assert_array_equal(np.asarray(image)[::4, ::4], originals[row.index - 1200])
        with Image.open(folder / row.explained) as image:
            page = np.asarray(image.convert("RGB"))
        assert len(digit_places(page, originals[row.index - 1200])) == 1 and not digit_places(page, inputs[row.index - 1200])
    assert sorted(p.name for p in folder.iterdir()) == ["digits", "explained", "gallery.png", "queue.csv"]
    assert len(list((folder / "explained").iterdir())) == QUEUE
    assert f"review queue: {QUEUE} test digits, {len(flagged)} of them flagged" in capsys.readouterr().out


def test_an_empty_review_queue_is_a_table_without_rows(project, edit_params):
    edit_params(project, {"review.top.test": 0})
    ambiguous.main()
    folder = project / paths.REVIEW_QUEUE_TEST
    assert pd.read_csv(folder / QUEUE_CSV).columns.tolist() == QUEUE_COLUMNS and len(pd.read_csv(folder / QUEUE_CSV)) == 0
    assert (folder / "gallery.png").is_file()


def test_a_scikit_learn_model_gets_no_explained_galleries_and_says_why(project, mnist_train, capsys):
    images, labels = mnist_train
    estimator = classical.fit("knn", images[:300], labels[:300], pca_components=20, svc_c=1.0, knn_neighbors=3, seed=0)
    save_classical(project / paths.MODEL, estimator, "knn", {"deskew": False, "stroke_width": None})
    (project / paths.MODEL / "model.msgpack").unlink()
    ambiguous.main()
    assert sorted(p.name for p in (project / "data/ambiguous/galleries").iterdir()) == sorted(f"{d}.png" for d in DEFINITIONS)
    queue = project / paths.REVIEW_QUEUE_TEST
    assert not (queue / "explained").exists() and pd.read_csv(queue / "queue.csv", keep_default_na=False)["explained"].eq("").all()
    assert len(list((queue / "digits").iterdir())) == QUEUE
    assert ("explained galleries skipped: data/model holds a scikit-learn model (knn), with no hidden layer to find "
            "neighbours in and no gradient") in capsys.readouterr().out


@pytest.mark.parametrize(("missing", "message"), [
    (paths.TRAIN_NPZ, r"data/prepared/train.npz: not found; run the preprocess stage first"),
    (paths.MODEL / "model.json", r"data/model/model.json: not found; run the train stage first"),
    (paths.RAW_TRAIN_IMAGES, r"data/raw/train-images-idx3-ubyte.gz: not found"),
])
def test_a_missing_input_of_the_explanations_is_named_and_nothing_is_written(project, missing, message):
    (project / missing).unlink()
    with pytest.raises(UserError, match=message):
        ambiguous.main()
    assert not (project / "data/ambiguous").exists()


@pytest.mark.parametrize("metrics", ['{"accuracy": 0.9}', '{"temperature": 0}', "[]"])
def test_metrics_without_a_temperature_name_the_stage_to_rerun_and_nothing_is_written(project, metrics):
    (project / paths.METRICS_JSON).write_text(metrics)
    with pytest.raises(UserError, match=r"^eval/metrics.json: no calibration `temperature`; rerun the evaluate stage"):
        ambiguous.main()
    assert not (project / "data/ambiguous").exists()


def test_missing_probabilities_name_the_stage_to_run(project):
    (project / "data/eval/probs.npz").unlink()
    with pytest.raises(UserError, match=r"data/eval/probs.npz: not found; run the evaluate stage"):
        ambiguous.main()


def test_probabilities_from_another_test_set_are_refused(project):
    np.savez(project / "data/eval/probs.npz", probs=np.full((N, 10), 0.1, np.float32),
             labels=np.zeros(N, np.uint8), index=np.arange(N, dtype=np.int64))
    with pytest.raises(UserError, match="does not match the test digits"):
        ambiguous.main()
    assert not (project / "data/ambiguous").exists()


def test_corrupt_test_set_is_a_user_error(project):
    (project / "data/prepared/test.npz").write_bytes(b"not an npz")
    with pytest.raises(UserError, match=r"data/prepared/test.npz: unreadable"):
        ambiguous.main()
