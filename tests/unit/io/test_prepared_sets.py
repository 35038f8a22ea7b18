"""Reading what the preprocess stage hands on: each split's arrays, and a test set checked to fit
together, with errors that say what is wrong and which stage to rerun."""

import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io.prepared_sets import load_index, load_split, load_test_set

N = 6


def npz_arrays(**changes) -> dict[str, np.ndarray]:
    arrays = {"images": np.full((N, 28, 28), 7, np.uint8), "labels": np.arange(N, dtype=np.uint8),
              "original": np.full((N, 28, 28), 9, np.uint8), "index": np.arange(100, 100 + N, dtype=np.int64)}
    return {key: value for key, value in {**arrays, **changes}.items() if value is not None}


def test_a_good_test_set_is_read_whole(tmp_path):
    np.savez(tmp_path / "test.npz", **npz_arrays())
    arrays = load_test_set(tmp_path / "test.npz")
    assert sorted(arrays) == ["images", "index", "labels", "original"]
    for key, value in npz_arrays().items():
        np.testing.assert_array_equal(arrays[key], value)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"images": np.zeros((N, 14, 14), np.uint8)}, r"`images` is uint8 \(6, 14, 14\), expected uint8 \(6, 28, 28\)"),
        ({"original": np.zeros((N, 28, 28), np.float32)}, r"`original` is float32 \(6, 28, 28\), expected uint8"),
        ({"images": np.zeros((N + 1, 28, 28), np.uint8)}, r"`images` is uint8 \(7, 28, 28\), expected uint8 \(6, 28, 28\)"),
        ({"index": np.arange(N - 1)}, "expected at least one digit and equal-length labels and index"),
        ({key: np.zeros((0, 28, 28) if key in ("images", "original") else 0, np.uint8) for key in ("images", "labels", "original", "index")},
         "expected at least one digit"),
        ({"labels": np.array([0, 1, 2, 10, 4, 5], np.uint8)}, "labels must be digits 0-9, found 10"),
        ({"original": None, "index": None}, r"missing array\(s\) original, index; rerun the preprocess stage"),
    ],
    ids=["small-images", "float-originals", "more-images-than-labels", "short-index", "empty", "label-ten", "old-format"],
)
def test_a_test_set_that_does_not_fit_together_is_named(tmp_path, changes, message):
    np.savez(tmp_path / "test.npz", **npz_arrays(**changes))
    with pytest.raises(UserError, match=message) as error:
        load_test_set(tmp_path / "test.npz")
    assert str(error.value).startswith(f"{tmp_path / 'test.npz'}: ")


def test_a_missing_or_unreadable_file_names_the_stage_to_run(tmp_path):
    with pytest.raises(UserError, match=r"test\.npz: not found; run the preprocess stage first"):
        load_test_set(tmp_path / "test.npz")
    (tmp_path / "train.npz").write_bytes(b"half a zip")
    with pytest.raises(UserError, match=r"train\.npz: unreadable .*; rerun the preprocess stage"):
        load_split(tmp_path / "train.npz")


def test_a_split_is_its_images_and_labels(tmp_path):
    images, labels = np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 3], np.uint8)
    np.savez(tmp_path / "val.npz", images=images, labels=labels)
    got_images, got_labels = load_split(tmp_path / "val.npz")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    np.savez(tmp_path / "val.npz", images=images)
    with pytest.raises(UserError, match=r"val\.npz: missing array\(s\) labels; rerun the preprocess stage"):
        load_split(tmp_path / "val.npz")


def test_a_split_index_is_one_int64_per_digit(tmp_path):
    np.savez(tmp_path / "train.npz", images=np.zeros((3, 28, 28), np.uint8), index=np.array([5, 9, 5], np.int64))
    assert load_index(tmp_path / "train.npz", 3).tolist() == [5, 9, 5]
    with pytest.raises(UserError, match=r"train\.npz: `index` is int64 \(3,\), expected int64 \(4,\); rerun the preprocess stage"):
        load_index(tmp_path / "train.npz", 4)
    np.savez(tmp_path / "train.npz", images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(UserError, match=r"train\.npz: missing array\(s\) index; rerun the preprocess stage"):
        load_index(tmp_path / "train.npz", 3)
