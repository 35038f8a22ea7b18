"""The IDX reader: the real MNIST files parse, and every kind of broken file is a one-line UserError."""

import gzip
import re

import numpy as np
import pytest

from mnist_dvc.errors import UserError
from mnist_dvc.io.idx import IMAGES_MAGIC, LABELS_MAGIC, read_images, read_labels, read_split

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
RANDOM_LABELS = np.random.default_rng(0).integers(0, 10, 1000, dtype=np.uint8).tobytes()  # compresses poorly


def idx_bytes(magic: int, dims: tuple[int, ...], data: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + data


def write_gz(path, payload: bytes):
    path.write_bytes(gzip.compress(payload))
    return path


@pytest.fixture
def small_split(tmp_path):
    """Three valid 28x28 images with labels 0, 1, 2, as gzip'd IDX files."""
    images = write_gz(tmp_path / "images.gz", idx_bytes(IMAGES_MAGIC, (3, 28, 28), bytes(range(256)) * 9 + bytes(48)))
    labels = write_gz(tmp_path / "labels.gz", idx_bytes(LABELS_MAGIC, (3,), bytes([0, 1, 2])))
    return images, labels


def test_real_training_files_parse(mnist_mirror):
    images, labels = read_split(mnist_mirror / "train-images-idx3-ubyte.gz", mnist_mirror / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60_000,) and labels.dtype == np.uint8
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(labels).tolist() == TRAIN_COUNTS
    assert images.mean() / 255 == pytest.approx(0.1307, abs=1e-4)


def test_real_test_files_parse(mnist_mirror):
    images, labels = read_split(mnist_mirror / "t10k-images-idx3-ubyte.gz", mnist_mirror / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10_000, 28, 28)
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(labels).tolist() == TEST_COUNTS


def test_small_valid_split_round_trips(small_split):
    images, labels = read_split(*small_split)
    assert images.shape == (3, 28, 28)
    assert images.reshape(-1)[:256].tolist() == list(range(256))
    assert labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(b"<html>404 Not Found</html>"), "not a gzip file"),
        (lambda p: p.write_bytes(gzip.compress(idx_bytes(LABELS_MAGIC, (1000,), RANDOM_LABELS))[:-100]), "truncated gzip"),
        (lambda p: p.write_bytes(b"\x1f\x8b" + b"garbage" * 10), "corrupt gzip data"),
        (lambda p: p.write_bytes(gzip.compress(b"")), "header cut short"),
        (lambda p: write_gz(p, idx_bytes(2050, (3,), bytes(3))), "wrong magic number 2050"),
        (lambda p: write_gz(p, idx_bytes(LABELS_MAGIC, (5,), bytes(3))), "data too short"),
        (lambda p: write_gz(p, idx_bytes(LABELS_MAGIC, (3,), bytes(5))), "data too long"),
    ],
    ids=["empty", "not-gzip", "truncated-gzip", "corrupt-gzip", "empty-content", "wrong-magic", "too-short", "too-long"],
)
def test_broken_label_files_are_user_errors(tmp_path, make, problem):
    path = tmp_path / "labels.gz"
    make(path)
    with pytest.raises(UserError, match=problem) as error:
        read_labels(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_labels_file_given_as_images_names_both_kinds(tmp_path):
    path = write_gz(tmp_path / "swapped.gz", idx_bytes(LABELS_MAGIC, (3,), bytes(3)))
    with pytest.raises(UserError, match=r"wrong magic number 2049 \(labels\); expected 2051 \(images\)"):
        read_images(path)


def test_images_with_dimensions_not_matching_the_bytes(tmp_path):
    path = write_gz(tmp_path / "images.gz", idx_bytes(IMAGES_MAGIC, (2, 28, 28), bytes(784)))
    with pytest.raises(UserError, match=re.escape(f"{path}: data too short")):
        read_images(path)


def test_images_of_the_wrong_size(tmp_path):
    path = write_gz(tmp_path / "images.gz", idx_bytes(IMAGES_MAGIC, (2, 32, 32), bytes(2 * 32 * 32)))
    with pytest.raises(UserError, match=re.escape(f"{path}: images are 32x32 pixels; expected 28x28")):
        read_images(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        read_labels(tmp_path / "absent.gz")


def test_label_outside_0_to_9(small_split, tmp_path):
    images, _ = small_split
    labels = write_gz(tmp_path / "bad-labels.gz", idx_bytes(LABELS_MAGIC, (3,), bytes([0, 10, 2])))
    with pytest.raises(UserError, match=re.escape(f"{labels}: label 10 at position 1 is not a digit 0-9")):
        read_split(images, labels)


def test_image_and_label_counts_differ(small_split, tmp_path):
    images, _ = small_split
    labels = write_gz(tmp_path / "short-labels.gz", idx_bytes(LABELS_MAGIC, (2,), bytes([0, 1])))
    with pytest.raises(UserError, match=re.escape(f"{labels}: 2 labels but {images} holds 3 images")):
        read_split(images, labels)
