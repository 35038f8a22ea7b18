"""The promotion gate on a run's scores (frozen_scores/: eval/metrics.json and eval/per_digit.csv of the
run committed at cce94bd, kept here so that re-recording the pipeline does not change these figures)
and the shipped `gate` params, against copies of them made better or worse: what passes, what is
refused, and the one line that says why."""

import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from mnist_dvc.config.params import Gate, load_params
from mnist_dvc.errors import UserError
from mnist_dvc.release.gate import Scores, decide, figure

FROZEN = Path(__file__).parent / "frozen_scores"


@pytest.fixture(scope="module")
def committed():
    """A run's metrics and per-digit table, as read from the files."""
    return json.loads((FROZEN / "metrics.json").read_text()), pd.read_csv(FROZEN / "per_digit.csv")


@pytest.fixture(scope="module")
def prod(committed) -> Scores:
    return Scores.read(*committed, "eval")


@pytest.fixture(scope="module")
def gate(repo_root) -> Gate:
    return load_params("gate", repo_root / "params.yaml")


def changed(scores: Scores, accuracy: float | None = None, **f1: float) -> Scores:
    """`scores` with another accuracy and the F1 of some digits (f1_7=0.98) changed."""
    new_f1 = {**scores.f1, **{int(key.removeprefix("f1_")): value for key, value in f1.items()}}
    return dataclasses.replace(scores, accuracy=scores.accuracy if accuracy is None else accuracy, f1=new_f1)


def test_the_committed_files_read_as_scores(prod):
    assert prod.accuracy == 0.9951 and prod.f1[7] == 0.990291 and prod.support[1] == 1135 and sorted(prod.f1) == list(range(10))


def test_a_better_model_passes_and_names_its_largest_fall(prod, gate):
    decision = decide(changed(prod, accuracy=0.9960, f1_3=0.99503), prod, gate)
    assert decision.passed
    assert decision.line == ("passed: test accuracy 0.996 vs prod 0.9951: gain 0.0009 >= gate.min_gain 0.0005; "
                             "no digit's F1 fell by more than gate.max_digit_drop 0.005 (largest: digit 3, 0.002)")


def test_a_gain_of_exactly_min_gain_passes_despite_float_rounding(prod, gate):
    assert 0.991 - 0.9905 < 0.0005  # the subtraction lands below the threshold
    at_9905 = changed(prod, accuracy=0.9905)
    assert decide(changed(prod, accuracy=0.991), at_9905, gate).passed


def test_too_small_a_gain_is_refused_with_both_figures_and_the_rule(prod, gate):
    decision = decide(prod, changed(prod, accuracy=0.9949), gate)
    assert not decision.passed
    assert decision.line == "refused: test accuracy 0.9951 vs prod 0.9949: gain 0.0002 < gate.min_gain 0.0005"


def test_a_worse_model_is_refused(prod, gate):
    decision = decide(changed(prod, accuracy=0.9940), prod, gate)
    assert not decision.passed
    assert decision.line == "refused: test accuracy 0.994 vs prod 0.9951: gain -0.0011 < gate.min_gain 0.0005"


def test_a_digit_that_regresses_refuses_a_better_average_naming_the_digit_and_both_f1s(prod, gate):
    decision = decide(changed(prod, accuracy=0.9970, f1_7=0.984), prod, gate)
    assert not decision.passed
    assert decision.line == "refused: digit 7 F1 0.984 vs prod 0.990291: drop 0.006291 > gate.max_digit_drop 0.005"


def test_a_drop_of_exactly_max_digit_drop_passes(prod, gate):
    assert decide(changed(prod, accuracy=0.9970, f1_7=0.985291), prod, gate).passed


def test_every_failed_rule_is_on_the_one_line(prod, gate):
    decision = decide(changed(prod, accuracy=0.9950, f1_2=0.98, f1_7=0.97), prod, gate)
    assert not decision.passed and "\n" not in decision.line
    assert decision.line == ("refused: test accuracy 0.995 vs prod 0.9951: gain -0.0001 < gate.min_gain 0.0005; "
                             "digit 2 F1 0.98 vs prod 0.99516: drop 0.01516 > gate.max_digit_drop 0.005; "
                             "digit 7 F1 0.97 vs prod 0.990291: drop 0.020291 > gate.max_digit_drop 0.005")


def test_the_first_promotion_needs_min_accuracy(prod, gate):
    passed = decide(prod, None, gate)
    assert passed.passed
    assert passed.line == "passed: test accuracy 0.9951 >= gate.min_accuracy 0.99 (first promotion: no model at prod yet)"
    refused = decide(changed(prod, accuracy=0.9899), None, gate)
    assert not refused.passed
    assert refused.line == "refused: test accuracy 0.9899 < gate.min_accuracy 0.99 (first promotion: no model at prod yet)"
    assert decide(changed(prod, accuracy=0.99), None, gate).passed


def test_the_gate_params_decide(prod):
    strict = Gate(min_gain=0.002, max_digit_drop=0.0, min_accuracy=0.999)
    assert not decide(changed(prod, accuracy=0.9965), prod, strict).passed
    assert not decide(changed(prod, accuracy=0.9990, f1_0=0.997), prod, strict).passed
    assert decide(changed(prod, accuracy=0.9990), prod, strict).passed
    assert not decide(prod, None, strict).passed


def test_scores_on_another_test_set_are_refused_as_incomparable(prod, gate):
    subset = dataclasses.replace(changed(prod, accuracy=0.999), support={**prod.support, 0: 98})
    decision = decide(subset, prod, gate)
    assert not decision.passed
    assert decision.line == ("refused: scored on another test set than prod (digit 0: 98 test digits vs prod 980), "
                             "so the accuracies cannot be compared")


@pytest.mark.parametrize("change, message", [
    (lambda m, t: ({**m, "accuracy": "high"}, t), "HEAD: eval/metrics.json has no test accuracy in [0, 1] (key `accuracy`); rerun the evaluate stage"),
    (lambda m, t: ({k: v for k, v in m.items() if k != "accuracy"}, t), "HEAD: eval/metrics.json has no test accuracy in [0, 1]"),
    (lambda m, t: ([m], t), "HEAD: eval/metrics.json has no test accuracy in [0, 1]"),
    (lambda m, t: (m, t.drop(columns=["f1", "support"])), "HEAD: eval/per_digit.csv lacks the column(s) f1, support; rerun the evaluate stage"),
    (lambda m, t: (m, t[t["digit"] != 4]), "HEAD: eval/per_digit.csv must have one row per digit 0-9, has digits [0, 1, 2, 3, 5, 6, 7, 8, 9]"),
])
def test_files_without_what_the_gate_reads_are_named(committed, change, message):
    with pytest.raises(UserError, match="^" + re.escape(message)):
        Scores.read(*change(*committed), "HEAD")


@pytest.mark.parametrize("value, shown", [(0.9951, "0.9951"), (0.0005, "0.0005"), (0.9951 - 0.9949, "0.0002"),
                                          (-1e-12, "0"), (0.0, "0"), (1.0, "1"), (0.99, "0.99")])
def test_figures_show_up_to_six_decimals_without_trailing_zeros(value, shown):
    assert figure(value) == shown
