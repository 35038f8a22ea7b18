"""The preprocess stage end to end on a small subset of the real MNIST files (how the validation
set is chosen is tests/unit/digits/test_split.py's)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

import stages.preprocess
from mnist_dvc.config import paths
from mnist_dvc.config.settings import with_settings
from mnist_dvc.digits.deskew import deskew
from mnist_dvc.digits.stroke import stroke_widths
from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import read_split
from stages.preprocess import main

SUBSET = dict(train_subset=2000, test_subset=500, val_size=200, seed=0, deskew=True)


@pytest.fixture
def workdir(tmp_path, monkeypatch, repo_root, mnist_mirror):
    """A project folder with the repository's params.yaml (small subset, one copy) and the real raw files."""
    raw = tmp_path / paths.RAW
    raw.mkdir(parents=True)
    for path in (paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS, paths.RAW_TEST_IMAGES, paths.RAW_TEST_LABELS):
        shutil.copy(mnist_mirror / path.name, raw / path.name)
    monkeypatch.chdir(tmp_path)
    set_params(repo_root, copies=1)
    return tmp_path


def set_params(repo_root, copies=None, **preprocess):
    """The repository's params.yaml with the small subset and then `preprocess` in its preprocess section."""
    settings = {f"preprocess.{key}": value for key, value in {**SUBSET, **preprocess}.items()}
    if copies is not None:
        settings["preprocess.augment.copies"] = copies
    params = with_settings(yaml.safe_load((repo_root / "params.yaml").read_text()), settings)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def load(split: str) -> dict[str, np.ndarray]:
    with np.load(f"data/prepared/{split}.npz") as data:
        return dict(data)


def test_writes_the_prepared_splits_and_counts(workdir, mnist_mirror):
    main()
    train, val, test = load("train"), load("val"), load("test")
    assert set(train) == {"images", "labels", "index"} and set(val) == {"images", "labels", "index"}
    assert set(test) == {"images", "labels", "original", "index"}
    assert sorted(path.name for path in (workdir / "data" / "prepared").iterdir()) == [
        "preparation.json", "test.npz", "test_verdicts.npz", "train.npz", "train_labels.npz", "val.npz"]
    assert json.loads((workdir / "data" / "prepared" / "preparation.json").read_text()) == {"deskew": True, "stroke_width": None}
    assert train["images"].shape == (2 * 1800, 28, 28) and train["labels"].shape == (3600,)
    assert val["images"].shape == (200, 28, 28) and test["images"].shape == (500, 28, 28)
    for array in (train["images"], train["labels"], val["images"], val["labels"], test["images"], test["original"]):
        assert array.dtype == np.uint8
    assert test["index"].dtype == np.int64 and test["index"].tolist() == list(range(500))
    assert test["labels"][:5].tolist() == [7, 2, 1, 0, 4]

    # The distorted copy follows the originals, with the same labels in the same order.
    originals, copies = train["labels"][:1800], train["labels"][1800:]
    assert np.array_equal(originals, copies)

    # Every image seen in training or validation is one of the first 2000 training images, deskewed;
    # the two sets are disjoint and together make up all of them.
    raw_images, raw_labels = read_split(paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS)
    expected = deskew(raw_images[:2000])
    seen = np.concatenate([train["images"][:1800], val["images"]]).reshape(2000, -1)
    assert sorted(map(bytes, seen)) == sorted(map(bytes, expected.reshape(2000, -1)))
    assert np.bincount(np.concatenate([originals, val["labels"]]), minlength=10).tolist() == np.bincount(
        raw_labels[:2000], minlength=10).tolist()
    # Each digit's index is its place in the official file; the copy carries its source's.
    assert sorted(np.concatenate([train["index"][:1800], val["index"]]).tolist()) == list(range(2000))
    assert np.array_equal(train["index"][1800:], train["index"][:1800])
    assert np.array_equal(val["images"], deskew(raw_images[val["index"]])) and np.array_equal(val["labels"], raw_labels[val["index"]])

    assert np.array_equal(test["images"], deskew(test["original"]))
    test_raw, _ = read_split(paths.RAW_TEST_IMAGES, paths.RAW_TEST_LABELS)
    assert np.array_equal(test["original"], test_raw[:500])
    # Without verdicts (no labels/review.csv here): every label as the official file has it.
    labels_in_use, test_verdicts = load("train_labels"), load("test_verdicts")
    assert labels_in_use["index"].tolist() == list(range(2000)) and labels_in_use["labels"].dtype == np.int64
    np.testing.assert_array_equal(labels_in_use["labels"], raw_labels[:2000])
    np.testing.assert_array_equal(test_verdicts["index"], test["index"])
    np.testing.assert_array_equal(test_verdicts["labels"], test["labels"])
    assert test_verdicts["verdicts"] == 0

    lines = (workdir / "eval" / "digit_counts.csv").read_text().splitlines()
    assert lines[0] == "digit,train,val,test"
    rows = np.array([[int(v) for v in line.split(",")] for line in lines[1:]])
    assert rows[:, 0].tolist() == list(range(10))
    assert rows[:, 1].tolist() == np.bincount(originals, minlength=10).tolist()
    assert rows[:, 2].tolist() == np.bincount(val["labels"], minlength=10).tolist()
    assert rows[:, 3].tolist() == np.bincount(test["labels"], minlength=10).tolist()
    assert rows[:, 1:].sum() == 1800 + 200 + 500


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)): the correlation of every image of `a` with every one of `b`, both blurred
    first (a Gaussian of 2 pixels), so that a digit moved by a pixel or two still looks like itself."""
    def unit(images):
        flat = ndimage.gaussian_filter(images.astype(np.float64), (0, 2, 2)).reshape(len(images), -1)
        flat -= flat.mean(axis=1, keepdims=True)
        return flat / np.linalg.norm(flat, axis=1, keepdims=True)

    return unit(a) @ unit(b).T


def ink_centres(images: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[:28, :28]
    mass = images.sum(axis=(1, 2), dtype=np.float64)
    return np.stack([(images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass], axis=1)


STRENGTHS = {"rotation_deg": 10.0, "shift_px": 2.0, "scale": 0.1, "shear_deg": 10.0, "elastic_alpha": 8.0, "elastic_sigma": 3.0}


def test_distorted_copies_follow_their_originals_in_the_training_part_only(workdir, repo_root):
    """`augment.copies` distorted copies of every training digit (at `STRENGTHS`): each after
    all the originals, with its original's label and index, unlike it yet plainly the same digit (its
    ink, where the ink is and its shape kept within what the strengths allow), fresh for every copy,
    the same for the same seed; validation and test digits get none."""
    set_params(repo_root, copies=2, **{f"augment.{key}": value for key, value in STRENGTHS.items()})
    main()
    train, val, test = load("train"), load("val"), load("test")
    n = 1800
    assert train["images"].shape == (3 * n, 28, 28) and val["images"].shape == (200, 28, 28) and test["images"].shape == (500, 28, 28)
    originals, copies = train["images"][:n], train["images"][n:].reshape(2, n, 28, 28)
    for k in (1, 2):
        assert np.array_equal(train["labels"][k * n : (k + 1) * n], train["labels"][:n])
        assert np.array_equal(train["index"][k * n : (k + 1) * n], train["index"][:n])
    raw_images, raw_labels = read_split(paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS)
    assert np.array_equal(originals, deskew(raw_images[train["index"][:n]]))  # the originals come first, undistorted
    assert np.array_equal(train["labels"][:n], raw_labels[train["index"][:n]])

    same_label = train["labels"][:n, None] == train["labels"][None, :n]
    np.fill_diagonal(same_label, False)
    for copy in copies:
        assert (copy != originals).any(axis=(1, 2)).all()  # every copy distorted
        ink = copy.sum(axis=(1, 2), dtype=np.float64) / originals.sum(axis=(1, 2), dtype=np.float64)
        assert ink.min() > 0.6 and ink.max() < 1.6  # scale at most 10%: the ink's area about the same
        assert np.linalg.norm(ink_centres(copy) - ink_centres(originals), axis=1).max() < 5  # shifts of at most 2 pixels
        # Each copy looks more like its own original than like most digits of its label: a copy of
        # another digit would only half the time.
        similarity = correlations(copy, originals)
        others = np.ma.median(np.ma.masked_array(similarity, ~same_label), axis=1).filled(np.nan)
        assert np.mean(np.diag(similarity) > others) > 0.9
    assert (copies[0] != copies[1]).any(axis=(1, 2)).all()  # each copy drawn afresh

    assert np.array_equal(val["images"], deskew(raw_images[val["index"]]))  # validation and test digits undistorted
    assert np.array_equal(test["images"], deskew(test["original"]))
    main()
    assert np.array_equal(load("train")["images"], train["images"])  # the same seed, the same copies


def test_same_params_give_byte_identical_outputs(workdir):
    main()
    first = {name: (workdir / "data" / "prepared" / name).read_bytes() for name in ("train.npz", "val.npz", "test.npz")}
    main()
    for name, content in first.items():
        assert (workdir / "data" / "prepared" / name).read_bytes() == content, name


def test_another_seed_holds_out_other_images(workdir, repo_root):
    set_params(repo_root, copies=0, seed=1, deskew=False)
    main()
    val_seed_1 = load("val")["images"]
    set_params(repo_root, copies=0, seed=2, deskew=False)
    main()
    assert not np.array_equal(load("val")["images"], val_seed_1)


def test_without_deskew_the_images_are_the_raw_ones(workdir, repo_root):
    set_params(repo_root, copies=0, deskew=False)
    main()
    test = load("test")
    assert np.array_equal(test["images"], test["original"])
    assert json.loads((workdir / "data" / "prepared" / "preparation.json").read_text()) == {"deskew": False, "stroke_width": None}


def test_stroke_normalisation_prepares_every_split_and_records_the_target(workdir, repo_root):
    set_params(repo_root, copies=0, stroke=True)
    main()
    preparation = json.loads((workdir / "data" / "prepared" / "preparation.json").read_text())
    assert preparation["deskew"] is True and 2.0 < preparation["stroke_width"] < 3.5
    for split in ("train", "val", "test"):
        widths = stroke_widths(load(split)["images"])
        assert abs(np.median(widths) - preparation["stroke_width"]) < 0.15, split


def test_validation_set_too_small_to_stratify(workdir, repo_root):
    set_params(repo_root, val_size=5)
    with pytest.raises(UserError, match=r"^params\.yaml: preprocess\.val_size = 5: no stratified split of 2000 training images"):
        main()
    assert not (workdir / "data" / "prepared").exists()


def test_corrupt_raw_file_leaves_no_prepared_data(workdir):
    (workdir / paths.RAW_TEST_LABELS).write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte.gz: not a gzip file"):
        main()
    assert not (workdir / "data" / "prepared").exists()


def test_negative_seed_is_a_user_error(workdir, repo_root):
    set_params(repo_root, seed=-1)
    with pytest.raises(UserError, match="preprocess.seed = -1"):
        main()


def test_crash_while_writing_keeps_the_previous_output(workdir, monkeypatch):
    main()
    prepared = workdir / "data" / "prepared"
    before = {path.name: path.read_bytes() for path in prepared.iterdir()}
    save_npz = stages.preprocess.save_npz
    written = []

    def save_then_crash(path, **arrays):
        """Writes train.npz and val.npz, then fails on test.npz."""
        if len(written) == 2:
            raise OSError("disk full")
        written.append(path)
        save_npz(path, **arrays)

    monkeypatch.setattr(stages.preprocess, "save_npz", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        main()
    assert {path.name: path.read_bytes() for path in prepared.iterdir()} == before
    assert sorted(path.name for path in prepared.parent.iterdir()) == ["prepared", "raw"]  # no leftovers


# --- a person's verdicts (labels/review.csv) ------------------------------------------------------

HEADER = "split,index,given_label,verdict,corrected_label,time\n"


def other(label: int) -> int:
    """A digit other than `label`: what a verdict of `wrong` corrects it to here."""
    return (int(label) + 1) % 10


def write_verdicts(rows: list[tuple]) -> None:
    """labels/review.csv with one line per (split, index, given_label, verdict, corrected_label) row."""
    lines = [f"{split},{index},{given},{verdict},{'' if corrected is None else corrected},2026-12-06T10:00:00Z\n"
             for split, index, given, verdict, corrected in rows]
    paths.REVIEW_CSV.parent.mkdir(exist_ok=True)
    paths.REVIEW_CSV.write_text(HEADER + "".join(lines))


def test_training_verdicts_correct_or_leave_out_their_digits_and_nothing_else(workdir, repo_root, capsys):
    """A training digit judged wrong gets its corrected label (its distorted copy too), one judged
    ambiguous is left out, in the training and the validation part alike; the validation split holds
    the same digits as without verdicts (less the one left out), so a verdict changes only its digit.
    Test verdicts go to test_verdicts.npz, never into test.npz; a verdict beyond the subset is not used."""
    main()
    before = {split: load(split) for split in ("train", "val", "test")}
    n = 1800
    train_at, val_at = before["train"]["index"][:n], before["val"]["index"]
    official, test_official = (read_split(*files)[1] for files in ((paths.RAW_TRAIN_IMAGES, paths.RAW_TRAIN_LABELS),
                                                                    (paths.RAW_TEST_IMAGES, paths.RAW_TEST_LABELS)))
    corrected, dropped, val_corrected, val_dropped = int(train_at[3]), int(train_at[10]), int(val_at[5]), int(val_at[6])
    write_verdicts([
        ("train", corrected, official[corrected], "wrong", other(official[corrected])),
        ("train", dropped, official[dropped], "ambiguous", None),
        ("train", val_corrected, official[val_corrected], "wrong", other(official[val_corrected])),
        ("train", val_dropped, official[val_dropped], "ambiguous", None),
        ("train", int(train_at[20]), official[train_at[20]], "right", None),
        ("train", 50_000, official[50_000], "wrong", other(official[50_000])),  # not among the first 2,000
        ("test", 4, test_official[4], "wrong", other(test_official[4])),
        ("test", 9, test_official[9], "ambiguous", None),
        ("test", 9_000, test_official[9_000], "right", None),  # not among the first 500
    ])
    capsys.readouterr()
    main()
    assert ("review (labels/review.csv): 5 training verdicts applied (2 labels corrected, 2 digits left out); "
            "2 test verdicts for the reviewed test accuracy") in capsys.readouterr().out
    train, val, test = load("train"), load("val"), load("test")
    np.testing.assert_array_equal(train["index"][: n - 1], train_at[train_at != dropped])  # the same digits, one left out
    np.testing.assert_array_equal(train["index"][n - 1 :], train["index"][: n - 1])  # and its copy
    np.testing.assert_array_equal(val["index"], val_at[val_at != val_dropped])
    labels = dict(zip(np.concatenate([train["index"], val["index"]]).tolist(), np.concatenate([train["labels"], val["labels"]]).tolist()))
    assert labels[corrected] == other(official[corrected]) and labels[val_corrected] == other(official[val_corrected])
    assert (train["labels"][train["index"] == corrected] == other(official[corrected])).all()  # the copy corrected too
    unchanged = [i for i in labels if i not in (corrected, val_corrected)]
    assert [labels[i] for i in unchanged] == official[unchanged].tolist()
    np.testing.assert_array_equal(train["images"][: n - 1], before["train"]["images"][:n][train_at != dropped])

    labels_in_use = load("train_labels")["labels"]
    expected = official[:2000].astype(np.int64)
    expected[[corrected, val_corrected]] = [other(official[corrected]), other(official[val_corrected])]
    expected[[dropped, val_dropped]] = -1
    np.testing.assert_array_equal(labels_in_use, expected)

    for key in ("images", "labels", "original", "index"):  # test verdicts are reported, never put into the test set
        np.testing.assert_array_equal(test[key], before["test"][key])
    test_verdicts = load("test_verdicts")
    reviewed = test_official[:500].astype(np.int64)
    reviewed[[4, 9]] = [other(test_official[4]), -1]
    np.testing.assert_array_equal(test_verdicts["labels"], reviewed)
    assert test_verdicts["verdicts"] == 2

    set_params(repo_root, copies=1, review=False)  # off: the official training labels, the test verdicts still reported
    main()
    assert "training verdicts not applied (preprocess.review: false); 2 test verdicts" in capsys.readouterr().out
    for split in ("train", "val", "test"):
        for key in ("images", "labels", "index"):
            np.testing.assert_array_equal(load(split)[key], before[split][key])
    np.testing.assert_array_equal(load("train_labels")["labels"], official[:2000])
    np.testing.assert_array_equal(load("test_verdicts")["labels"], reviewed)


# case: labels/review.csv's text, the words the one-line error must hold
BAD_VERDICTS = {
    "label-outside-0-9": (HEADER + "train,7,3,wrong,12,t\n", r"labels/review\.csv: row 2: corrected_label = '12': expected a whole number from 0 to 9"),
    "no-such-digit": (HEADER + "train,0,5,right,,t\ntest,10000,3,right,,t\n", r"labels/review\.csv: row 3: index = '10000': expected a whole number from 0 to 9999"),
    "not-the-official-label": (HEADER + "train,0,4,right,,t\n", r"labels/review\.csv: (row 2: )?train digit 0: given_label = 4, but the official label is 5"),
    "unknown-verdict": (HEADER + "test,1,2,maybe,,t\n", r"labels/review\.csv: row 2: verdict = 'maybe': expected one of right, wrong, ambiguous"),
    "wrong-header": ("split,index,label\ntrain,0,5\n", r"labels/review\.csv: header 'split,index,label': expected split,index,given_label,verdict"),
    "empty-file": ("", r"labels/review\.csv: empty"),
    "malformed-row": (HEADER + "train,0,5,right,,t\ntrain,1,0\n", r"labels/review\.csv: row 3: 3 fields: expected 6"),
}


@pytest.mark.parametrize("review", [True, False], ids=["review-on", "review-off"])
@pytest.mark.parametrize("case", BAD_VERDICTS)
def test_a_bad_verdict_file_stops_the_stage_with_one_line_and_writes_nothing(workdir, repo_root, case, review):
    """Checked whether or not the verdicts are applied: a verdict is never silently ignored."""
    set_params(repo_root, copies=1, review=review)
    text, message = BAD_VERDICTS[case]
    paths.REVIEW_CSV.parent.mkdir(exist_ok=True)
    paths.REVIEW_CSV.write_text(text)
    with pytest.raises(UserError, match=f"^{message}") as error:
        main()
    assert "\n" not in str(error.value)
    assert not (workdir / "data" / "prepared").exists() and not (workdir / "eval").exists()
