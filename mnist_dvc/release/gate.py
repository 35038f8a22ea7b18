"""The promotion gate: whether a candidate model may take stage `prod` from the model now there.

A pure rule over what the evaluate stage committed (eval/metrics.json's `accuracy`, eval/per_digit.csv's
`digit`, `f1` and `support`) and params.yaml's `gate` section (docs/registry.md):

- no model at `prod` yet: the candidate's test accuracy must reach `gate.min_accuracy`;
- otherwise both were scored on the same test set (equal support per digit), the accuracy rose by at
  least `gate.min_gain`, and no digit's F1 fell by more than `gate.max_digit_drop`, since a better
  average can hide a digit that got worse.

The decision is one line that gives both figures of each rule and, on refusal, every rule that failed,
so a refused promotion says what to fix without a second look.
"""

from dataclasses import dataclass

import pandas as pd

from mnist_dvc import NUM_CLASSES
from mnist_dvc.config.params import Gate
from mnist_dvc.errors import UserError

# The figures are rounded to 6 decimals when written, and a difference of two floats such as
# 0.9956 - 0.9951 lands a hair off 0.0005: a margin far below any real difference keeps it equal.
_SLACK = 1e-9


@dataclass(frozen=True)
class Scores:
    """One model's test scores, as the gate compares them."""

    accuracy: float
    f1: dict[int, float]  # digit -> F1 on the test set
    support: dict[int, int]  # digit -> test digits of that class

    @classmethod
    def read(cls, metrics: object, per_digit: pd.DataFrame, source: str) -> "Scores":
        """Scores from eval/metrics.json's content and eval/per_digit.csv's table; `UserError` naming
        `source` (the commit they come from) when either lacks what the gate reads."""
        accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
        if not isinstance(accuracy, (int, float)) or isinstance(accuracy, bool) or not 0 <= accuracy <= 1:
            raise UserError(f"{source}: eval/metrics.json has no test accuracy in [0, 1] (key `accuracy`); rerun the evaluate stage")
        missing = {"digit", "f1", "support"} - set(per_digit.columns)
        if missing:
            raise UserError(f"{source}: eval/per_digit.csv lacks the column(s) {', '.join(sorted(missing))}; rerun the evaluate stage")
        digits = per_digit["digit"].tolist()
        if sorted(digits) != list(range(NUM_CLASSES)):
            raise UserError(f"{source}: eval/per_digit.csv must have one row per digit 0-9, has digits {digits}")
        return cls(float(accuracy), dict(zip(digits, map(float, per_digit["f1"]))), dict(zip(digits, map(int, per_digit["support"]))))


@dataclass(frozen=True)
class Decision:
    passed: bool
    line: str  # "passed: ..." or "refused: ...", one line


def figure(value: float) -> str:
    """A score as the gate's line shows it: up to 6 decimals, trailing zeros dropped (0.9951, 0.0005)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def decide(candidate: Scores, prod: Scores | None, gate: Gate) -> Decision:
    """The gate's verdict on `candidate` against the model at `prod` (None: no model there yet)."""
    accuracy = figure(candidate.accuracy)
    if prod is None:
        reached = candidate.accuracy + _SLACK >= gate.min_accuracy
        sign = ">=" if reached else "<"
        return Decision(reached, f"{'passed' if reached else 'refused'}: test accuracy {accuracy} {sign} "
                                 f"gate.min_accuracy {figure(gate.min_accuracy)} (first promotion: no model at prod yet)")
    other_set = [d for d in range(NUM_CLASSES) if candidate.support[d] != prod.support[d]]
    if other_set:
        d = other_set[0]
        return Decision(False, f"refused: scored on another test set than prod (digit {d}: {candidate.support[d]} test digits "
                               f"vs prod {prod.support[d]}), so the accuracies cannot be compared")
    gain = candidate.accuracy - prod.accuracy
    accuracy_rule = f"test accuracy {accuracy} vs prod {figure(prod.accuracy)}: gain {figure(gain)}"
    failed = []
    if gain + _SLACK < gate.min_gain:
        failed.append(f"{accuracy_rule} < gate.min_gain {figure(gate.min_gain)}")
    drops = {d: prod.f1[d] - candidate.f1[d] for d in range(NUM_CLASSES)}
    for d, drop in drops.items():
        if drop - _SLACK > gate.max_digit_drop:
            failed.append(f"digit {d} F1 {figure(candidate.f1[d])} vs prod {figure(prod.f1[d])}: "
                          f"drop {figure(drop)} > gate.max_digit_drop {figure(gate.max_digit_drop)}")
    if failed:
        return Decision(False, "refused: " + "; ".join(failed))
    worst = max(drops, key=drops.get)
    fall = f"largest: digit {worst}, {figure(drops[worst])}" if drops[worst] > 0 else "none fell"
    return Decision(True, f"passed: {accuracy_rule} >= gate.min_gain {figure(gate.min_gain)}; no digit's F1 fell by more than "
                          f"gate.max_digit_drop {figure(gate.max_digit_drop)} ({fall})")
