"""A committee of trained models: who its members are, and their vote.

The vote averages the members' probabilities rather than counting their top choices: a confident
member outweighs two unsure ones, and there are no ties.
"""

import numpy as np

from mnist_dvc.analysis.metrics import summarize


def member_names(models: list[str], seeds: list[int]) -> list[str]:
    """The folder name of each member, as committee/dvc.yaml's matrix builds it: <model>-<seed>."""
    return [f"{model}-{seed}" for model in models for seed in seeds]


def vote(member_probs: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """The committee's headline scores from the mean of the members' probabilities, each member's
    accuracy and their median."""
    scores = summarize(np.mean(list(member_probs.values()), axis=0), labels)
    members = {name: summarize(probs, labels)["accuracy"] for name, probs in member_probs.items()}
    return {**scores, "member_accuracy_median": float(np.median(list(members.values()))), "members": members}
