"""A committee's members and their vote, on hand-made probabilities."""

import numpy as np

from mnist_dvc.analysis.committee import member_names, vote


def test_members_are_every_model_with_every_seed_named_as_the_dvc_matrix_names_them():
    assert member_names(["vgg_bn", "knn"], [1, 2]) == ["vgg_bn-1", "vgg_bn-2", "knn-1", "knn-2"]
    assert member_names(["flat_mlp"], [0]) == ["flat_mlp-0"]


def ten_classes(probs) -> np.ndarray:
    """Two-class probabilities as ten-class ones, digits 2-9 never chosen."""
    return np.pad(np.asarray(probs, np.float32), ((0, 0), (0, 8)))


def test_the_vote_averages_probabilities_so_a_confident_member_outweighs_two_unsure_ones():
    labels = np.array([0, 1])
    sure = [[0.9, 0.1], [0.1, 0.9]]
    unsure_wrong = [[0.45, 0.55], [0.1, 0.9]]
    members = {"a-1": ten_classes(sure), "b-1": ten_classes(unsure_wrong), "c-1": ten_classes(unsure_wrong)}
    scores = vote(members, labels)
    assert scores["accuracy"] == 1.0 and scores["errors"] == 0  # a majority vote would get digit 0 wrong
    assert scores["members"] == {"a-1": 1.0, "b-1": 0.5, "c-1": 0.5}
    assert scores["member_accuracy_median"] == 0.5
    assert set(scores) == {"accuracy", "loss", "errors", "macro_f1", "member_accuracy_median", "members"}


def test_the_committee_loss_is_that_of_the_averaged_probabilities():
    labels = np.array([0])
    scores = vote({"a-1": ten_classes([[0.8, 0.2]]), "b-1": ten_classes([[0.4, 0.6]])}, labels)
    assert scores["loss"] == round(-np.log(0.6), 6)  # the mean probability of the true digit, 0.6
    assert scores["accuracy"] == 1.0 and scores["member_accuracy_median"] == 0.5  # the median of 1 and 0


def test_a_committee_of_one_scores_as_its_member():
    labels = np.array([0, 1, 1])
    probs = ten_classes([[0.7, 0.3], [0.6, 0.4], [0.2, 0.8]])
    scores = vote({"knn-3": probs}, labels)
    assert scores["accuracy"] == scores["members"]["knn-3"] == scores["member_accuracy_median"] == round(2 / 3, 6)
    assert scores["errors"] == 1
