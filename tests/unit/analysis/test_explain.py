"""Nearest neighbours on hand-made 2-D points, saliency of models whose gradient is known, and the
pieces the stages explain digits with: the training bank, one `explain` call, the gallery's rows."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.spatial.distance import cdist

from mnist_dvc.analysis.explain import (
    Bank,
    DigitsToExplain,
    Gallery,
    embed,
    explain,
    gallery_rows,
    load_bank,
    nearest,
    neighbour_classes,
    saliency,
    together,
)
from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import save_npz
from mnist_dvc.models.networks import build_model, init_rngs

# position: point, label
BANK = np.array([[0, 0], [1, 0], [5, 5], [0, 2], [6, 5], [0, 1], [9, 9]], dtype=np.float32)
BANK_LABELS = np.array([3, 3, 8, 3, 8, 7, 8])


def test_nearest_bank_digits_of_the_asked_class_nearest_first():
    queries = np.array([[0, 0.2], [0, 0.2], [5.4, 5]], dtype=np.float32)
    found = nearest(queries, BANK, BANK_LABELS, classes=np.array([3, 7, 8]), k=2)
    assert found.dtype == np.int64
    # Near the origin: of the 3s, position 0 (distance 0.2) then 1 (1.02), not 5 (a 7, nearer still).
    np.testing.assert_array_equal(found, [[0, 1], [5, -1], [2, 4]])


def test_fewer_bank_digits_than_k_pad_with_minus_one():
    found = nearest(np.zeros((2, 2)), BANK, BANK_LABELS, classes=np.array([7, 5]), k=3)
    np.testing.assert_array_equal(found, [[5, -1, -1], [-1, -1, -1]])


def test_equal_distances_go_to_the_lower_position():
    found = nearest(np.array([[0.5, 0.0]]), BANK, BANK_LABELS, classes=np.array([3]), k=3)
    np.testing.assert_array_equal(found, [[0, 1, 3]])


def test_chunked_search_matches_brute_force():
    rng = np.random.default_rng(0)
    bank, labels = rng.standard_normal((2000, 16)), rng.integers(0, 10, 2000)
    queries, classes = rng.standard_normal((300, 16)), rng.integers(0, 10, 300)
    distance = cdist(queries, bank)
    distance[classes[:, None] != labels[None, :]] = np.inf
    np.testing.assert_array_equal(nearest(queries, bank, labels, classes, k=5, chunk=7), np.argsort(distance, axis=1)[:, :5])


def test_an_excluded_bank_digit_is_never_a_neighbour():
    found = nearest(np.array([[0, 0], [0, 0], [0, 1]]), BANK, BANK_LABELS, classes=np.array([3, 3, 7]), k=3,
                    exclude=np.array([0, -1, 5]))
    # Query 0 sits on bank digit 0 but may not find it; query 1 may; the only 7 left out leaves none.
    np.testing.assert_array_equal(found, [[1, 3, -1], [0, 1, 3], [-1, -1, -1]])


@pytest.mark.parametrize("queries, classes, k", [
    (np.zeros((1, 3)), np.array([3]), 1),  # wrong dimension
    (np.zeros((1, 2)), np.array([3, 3]), 1),  # one class too many
    (np.zeros((1, 2)), np.array([3]), 0),
])
def test_mismatched_shapes_raise(queries, classes, k):
    with pytest.raises(ValueError):
        nearest(queries, BANK, BANK_LABELS, classes, k=k)
    with pytest.raises(ValueError):
        nearest(np.zeros((1, 2)), BANK, BANK_LABELS, np.array([3]), exclude=np.array([0, 1]))


IMAGES = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
WEIGHTS = jnp.asarray(np.random.default_rng(1).standard_normal((10, 784)), dtype=jnp.float32)
BIAS = jnp.arange(10, dtype=jnp.float32)


def linear(x):
    return x.reshape(len(x), -1) @ WEIGHTS.T + BIAS


def constant(x):
    return jnp.broadcast_to(BIAS, (len(x), 10))


def test_saliency_of_a_linear_model_is_the_difference_of_its_top_two_weight_rows():
    logits = np.asarray(linear(IMAGES.astype(np.float32)[..., None] / 255))
    top, second = np.argsort(-logits, axis=1)[:, :2].T
    expected = (np.asarray(WEIGHTS)[top] - np.asarray(WEIGHTS)[second]).reshape(-1, 28, 28)
    found, classes = saliency(linear, IMAGES)
    assert found.shape == (4, 28, 28) and found.dtype == np.float32
    np.testing.assert_allclose(found, expected, rtol=1e-6)
    np.testing.assert_array_equal(classes, np.stack([top, second], axis=1))


def test_saliency_of_a_model_that_ignores_the_image_is_zero():
    found, classes = saliency(constant, IMAGES)
    np.testing.assert_array_equal(found, np.zeros((4, 28, 28), np.float32))
    np.testing.assert_array_equal(classes, [[9, 8]] * 4)  # its largest bias, then the next


class TinyNet(nnx.Module):
    """A convolution, BatchNorm and a 16-number embedding: just enough of a real model."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), strides=(2, 2), rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.hidden = nnx.Linear(14 * 14 * 4, 16, rngs=rngs)
        self.out = nnx.Linear(16, 10, rngs=rngs)

    def embed(self, x):
        return nnx.relu(self.hidden(nnx.relu(self.norm(self.conv(x))).reshape(len(x), -1)))

    def __call__(self, x):
        return self.out(self.embed(x))


@pytest.fixture(scope="module")
def tiny_net():
    model = TinyNet(init_rngs(0))
    model.eval()
    return model


def test_saliency_of_an_nnx_model_is_finite_and_per_digit(tiny_net):
    found, _ = saliency(tiny_net, IMAGES)
    assert found.shape == (4, 28, 28) and np.isfinite(found).all() and (found != 0).any()
    # Each digit's saliency is its own: the same digit alone gives the same map.
    np.testing.assert_allclose(saliency(tiny_net, IMAGES[1:2])[0][0], found[1], rtol=1e-5, atol=1e-6)


def test_embeddings_are_the_model_s_whatever_the_batch_size(tiny_net):
    direct = np.asarray(tiny_net.embed(IMAGES.astype(np.float32)[..., None] / 255))
    for batch_size in (4, 3, 100):
        found = embed(tiny_net.embed, IMAGES, batch_size=batch_size)
        assert found.shape == (4, 16) and found.dtype == np.float32
        np.testing.assert_allclose(found, direct, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        embed(tiny_net.embed, IMAGES[:0])


@pytest.fixture(scope="module")
def default_model():
    model = build_model("vgg_bn", width=4, rngs=init_rngs(0))
    model.eval()
    return model


def test_saliency_of_the_default_model_in_eval_mode(default_model):
    found, classes = saliency(default_model, IMAGES)
    assert found.shape == (4, 28, 28) and np.isfinite(found).all() and (found != 0).any()
    logits = np.asarray(default_model(IMAGES.astype(np.float32)[..., None] / 255))
    np.testing.assert_array_equal(classes, np.argsort(-logits, axis=1)[:, :2])


# --- what the stages explain digits with -------------------------------------------------------


def test_the_second_class_is_the_given_label_or_else_the_runner_up():
    probs = np.array([[0.1, 0.7, 0.2] + [0] * 7, [0.1, 0.7, 0.2] + [0] * 7, [0.5, 0.5] + [0] * 8])
    # Wrong (given 0): predicted 1 and given 0. Right (given 1): predicted 1 and runner-up 2. A tie: the lower digit first.
    np.testing.assert_array_equal(neighbour_classes(probs, np.array([0, 1, 0])), [[1, 0], [1, 2], [0, 1]])


def test_bank_positions_of_official_indices():
    bank = Bank(*(np.zeros((3, 28, 28), np.uint8),) * 2, labels=np.array([4, 1, 7]), index=np.array([2, 5, 9]))
    np.testing.assert_array_equal(bank.positions(np.array([5, 9, 0, 3, 10, 2])), [1, 2, -1, -1, -1, 0])


@pytest.fixture
def prepared_with_copies(tmp_path, mnist_train):
    """train.npz as preprocess writes it for training digits 10, 3 and 7 with one distorted copy each:
    the originals, then the copies (inverted here, so a copy is told apart), each carrying its index."""
    images, labels = mnist_train
    index = np.array([10, 3, 7])
    save_npz(tmp_path / paths.TRAIN_NPZ, images=np.concatenate([images[index] // 2, 255 - images[index]]),
             labels=np.tile(labels[index], 2), index=np.tile(index, 2))
    return tmp_path / paths.TRAIN_NPZ


def test_the_bank_holds_each_training_digit_once_as_the_model_takes_it_and_as_written(prepared_with_copies, mnist_mirror, mnist_train):
    images, labels = mnist_train
    raw = (mnist_mirror / paths.RAW_TRAIN_IMAGES.name, mnist_mirror / paths.RAW_TRAIN_LABELS.name)
    bank = load_bank(prepared_with_copies, *raw)
    np.testing.assert_array_equal(bank.index, [3, 7, 10])  # sorted by index, copies left out
    np.testing.assert_array_equal(bank.inputs, images[[3, 7, 10]] // 2)  # the originals of train.npz, not the copies
    np.testing.assert_array_equal(bank.written, images[[3, 7, 10]])
    np.testing.assert_array_equal(bank.labels, labels[[3, 7, 10]])


def test_a_bank_from_other_digits_than_the_official_file_names_the_file(prepared_with_copies, mnist_mirror):
    save_npz(prepared_with_copies, images=np.zeros((2, 28, 28), np.uint8), labels=np.array([9, 9], np.uint8),
             index=np.array([0, 1]))  # training digits 0 and 1 are a 5 and a 0
    with pytest.raises(UserError, match=r"data/prepared/train.npz: its digits are not those of .*; rerun the preprocess stage"):
        load_bank(prepared_with_copies, mnist_mirror / paths.RAW_TRAIN_IMAGES.name, mnist_mirror / paths.RAW_TRAIN_LABELS.name)


@pytest.fixture(scope="module")
def small_bank(mnist_train):
    """The first 300 training digits as written, and as the model takes them made fainter (halved),
    so that a picture of a digit tells which of the two it shows."""
    images, labels = mnist_train
    return Bank(images[:300] // 2, images[:300], labels[:300], np.arange(300))


def test_explain_finds_a_bank_digit_itself_first_unless_excluded(default_model, small_bank):
    queries = np.array([12, 40, 41])
    classes = np.stack([small_bank.labels[queries], (small_bank.labels[queries] + 1) % 10], axis=1)
    found = explain(default_model, small_bank, small_bank.inputs[queries], classes)
    assert found.neighbours.shape == (3, 2, 5) and found.saliency.shape == (3, 28, 28) and found.contrast.shape == (3, 2)
    np.testing.assert_array_equal(found.neighbours[:, 0, 0], queries)  # distance 0 to itself
    assert (small_bank.labels[found.neighbours] == classes[:, :, None]).all()  # each group of its own class
    # The same digits with themselves left out: the rest of each list moves up by one.
    without = explain(default_model, small_bank, small_bank.inputs[queries], classes, exclude=queries)
    np.testing.assert_array_equal(without.neighbours[:, 0, :4], found.neighbours[:, 0, 1:])
    np.testing.assert_array_equal(without.neighbours[:, 1], found.neighbours[:, 1])
    np.testing.assert_allclose(without.saliency, found.saliency)
    assert found.take(np.array([2, 0])).neighbours.tolist() == found.neighbours[[2, 0]].tolist()


def test_gallery_rows_show_digits_as_written_name_each_group_and_caption_each_neighbour_with_its_index(default_model, small_bank):
    """A row shows its digit and its neighbours as written and the saliency over the digit as the model
    took it; the bank's two differ here, so a row built from the wrong one fails."""
    queries = np.array([12, 40])
    given = small_bank.labels[queries]
    probs = np.eye(10)[[given[0], (given[1] + 3) % 10]] * 0.9 + 0.01  # the first right, the second wrong
    classes = neighbour_classes(probs, given)
    found = explain(default_model, small_bank, small_bank.inputs[queries], classes, exclude=queries)
    rows = gallery_rows(found, small_bank, small_bank.written[queries], small_bank.inputs[queries], ["a", "b"], given)
    right, wrong = rows
    assert [group.header for group in right.groups] == [f"nearest {given[0]}s (predicted)", f"nearest {classes[0, 1]}s (runner-up: predicted = given)"]
    assert [group.header for group in wrong.groups] == [f"nearest {classes[1, 0]}s (predicted)", f"nearest {given[1]}s (given)"]
    assert (right.wrong, wrong.wrong, right.caption) == (False, True, "a")
    top, second = found.contrast[0]
    assert right.saliency_caption == f"red {top}, blue {second}"
    assert right.groups[0].captions == [f"#{at}" for at in found.neighbours[0, 0]]
    # Each digit and each of its neighbours as written; the saliency over the digit as the model took it.
    for row, query, neighbours in zip(rows, queries, found.neighbours):
        np.testing.assert_array_equal(row.digit, small_bank.written[query])
        np.testing.assert_array_equal(row.model_input, small_bank.inputs[query])
        for group, positions in zip(row.groups, neighbours):
            assert len(group.digits) == (positions >= 0).sum() > 0
            for digit, at in zip(group.digits, positions):
                np.testing.assert_array_equal(digit, small_bank.written[at])


def test_galleries_of_their_own_digits_are_explained_together_each_pointing_at_its_own():
    def digits(first: int, n: int, training_index=None) -> DigitsToExplain:
        values = np.arange(first, first + n)
        return DigitsToExplain(np.full((n, 28, 28), first, np.uint8), np.zeros((n, 28, 28), np.uint8), np.eye(10)[values % 10],
                               values % 10, training_index)

    train = (digits(0, 3, training_index=np.array([7, 8, 9])), Gallery(np.array([2, 0]), ["c", "a"], Path("train.png"), "train"))
    test = (digits(5, 2), Gallery(np.array([0, 1]), ["x", "y"], Path("test.png"), "test"))
    both, galleries = together([train, test])
    assert both.inputs[:, 0, 0].tolist() == [0, 0, 0, 5, 5] and both.given.tolist() == [0, 1, 2, 5, 6]
    assert both.training_index.tolist() == [7, 8, 9, -1, -1]  # a digit not from the training set is never excluded
    assert [gallery.at.tolist() for gallery in galleries] == [[2, 0], [3, 4]]
    assert [(gallery.captions, gallery.path, gallery.title) for gallery in galleries] == [
        (["c", "a"], Path("train.png"), "train"), (["x", "y"], Path("test.png"), "test")]
    assert together([test, test])[0].training_index is None
