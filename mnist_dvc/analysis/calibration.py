"""How far a model's confidence can be trusted, and one number that repairs it: temperature scaling.

Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017) divides every
logit by one scalar T fitted on held-out digits: T > 1 softens over-confident probabilities, T < 1
sharpens under-confident ones (label smoothing makes a model under-confident). It never changes
which digit is predicted, so accuracy is untouched and only the confidence moves.

The expected calibration error (ECE) and the reliability table measure the gap between confidence
and accuracy, the table in the shape a `dvc plots` reliability diagram reads. `calibrate`,
`calibration_figures` and `reliability_tables` are the evaluate stage's whole use of them.

The pipeline stores probabilities rather than logits; `logits_from_probs` turns them back into
logits that serve just as well, because softmax is shift-invariant: log(p) differs from the
original logits only by a per-digit constant, so softmax(log(p) / T) equals softmax(logits / T).
`calibrated_probs` is that round trip, the one way stored or freshly predicted probabilities are
calibrated (the evaluate and audit stages, the predict stage, mnist-dvc and its web page).
"""

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

# Stops log(0) for a probability that underflowed to exactly zero; e^-27.6 is far below anything measurable.
_EPSILON = 1e-12
# The temperatures searched: 1/100 to 100, wide enough for any model that learnt something. When the
# likelihood keeps improving towards a bound (every digit right and separable), the bound is returned.
_LOG_T_BOUNDS = (np.log(1e-2), np.log(1e2))
BINS = 15  # equal-width confidence bins of the reliability table and the expected calibration error


def logits_from_probs(probs: np.ndarray) -> np.ndarray:
    """log(clip(probs)) as float64 logits: equal to the model's logits up to a per-digit constant,
    which softmax ignores (see the module docstring)."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), _EPSILON, 1.0))


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 (N, C) scores and int64 (N,) labels; ValueError when empty or mismatched."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if scores.ndim != 2 or labels.shape != (len(scores),):
        raise ValueError(f"expected scores (N, C) and labels (N,), got {scores.shape} and {labels.shape}")
    if len(scores) == 0:
        raise ValueError("no digits given")
    return scores, labels


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T > 0 minimising the mean negative log-likelihood of softmax(logits / T).

    The likelihood is unimodal in log T (convex in 1/T), so a bounded one-dimensional search on log T
    finds it; T lies in [0.01, 100]. Raises ValueError on empty or mismatched input.
    """
    logits, labels = _check(logits, labels)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return -log_softmax(logits / np.exp(log_t), axis=1)[rows, labels].mean()

    result = minimize_scalar(nll, bounds=_LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) as float32 probabilities (N, C); ValueError unless T > 0."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1).astype(np.float32)


def calibrated_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """`probs` (N, C) scaled by `temperature`: softmax(log(probs) / T) as float32 (see the module
    docstring for why the logits need not be known); ValueError unless T > 0."""
    return apply_temperature(logits_from_probs(probs), temperature)


def reliability_table(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """Confidence against accuracy in `bins` equal-width confidence bins over [0, 1].

    A digit's confidence is its highest probability, and it counts as correct when that digit is
    its label. Bins are (lower, upper], the first one including 0. One row per non-empty bin, in
    order, with columns bin_lower, bin_upper, confidence (mean), accuracy and count; empty bins are
    left out so that every row is a point of the reliability diagram. ValueError on empty input.
    """
    probs, labels = _check(probs, labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    digits = pd.DataFrame({
        "bin": pd.cut(probs.max(axis=1), edges, labels=False, include_lowest=True),
        "confidence": probs.max(axis=1),
        "accuracy": (probs.argmax(axis=1) == labels).astype(np.float64),
    })
    table = digits.groupby("bin").agg(
        confidence=("confidence", "mean"), accuracy=("accuracy", "mean"), count=("confidence", "size")
    ).reset_index()
    table.insert(0, "bin_lower", edges[table["bin"]])
    table.insert(1, "bin_upper", edges[table["bin"] + 1])
    return table.drop(columns="bin")


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """ECE: |accuracy - mean confidence| of each bin of `reliability_table`, weighted by its share of
    the digits. 0 for a calibrated model, at most 1. ValueError on empty input."""
    table = reliability_table(probs, labels, bins)
    return float((table["count"] * (table["accuracy"] - table["confidence"]).abs()).sum() / table["count"].sum())


def calibrate(probs: np.ndarray, val_probs: np.ndarray, val_labels: np.ndarray) -> tuple[np.ndarray, float]:
    """(`probs` temperature-scaled, float32; the temperature), fitted on held-out digits' `val_probs`,
    predicted as `probs` were (same batch size, same views), and their `val_labels`. ValueError when
    no temperature can be fitted (no held-out digits)."""
    temperature = fit_temperature(logits_from_probs(val_probs), val_labels)
    return calibrated_probs(probs, temperature), temperature


def calibration_figures(raw: np.ndarray, calibrated: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """`temperature`, `ece_before` / `ece_after` (of the `raw` and the `calibrated` probabilities)
    and `loss_calibrated` (`mnist_dvc.analysis.metrics.summarize`'s loss of the calibrated ones), rounded to
    6 decimals like the other metrics."""
    from mnist_dvc.analysis.metrics import summarize  # scikit-learn: imported only where needed

    return {
        "temperature": round(temperature, 6),
        "ece_before": round(expected_calibration_error(raw, labels), 6),
        "ece_after": round(expected_calibration_error(calibrated, labels), 6),
        "loss_calibrated": summarize(calibrated, labels)["loss"],
    }


def reliability_tables(raw: np.ndarray, calibrated: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Both `reliability_table`s, raw rows then calibrated ones, rounded to 6 decimals, with a first
    column `probabilities` ("raw" or "calibrated")."""
    tables = [reliability_table(p, labels).assign(probabilities=name) for name, p in (("raw", raw), ("calibrated", calibrated))]
    table = pd.concat(tables, ignore_index=True).round(6)
    return table[["probabilities", *(column for column in table.columns if column != "probabilities")]]


def recorded_temperature(record) -> float | None:
    """The positive number a JSON record (eval/metrics.json, the ambiguous stage's summary.json)
    holds under `temperature`; None when it holds none, as one written before calibration."""
    found = record.get("temperature") if isinstance(record, dict) else None
    if isinstance(found, bool) or not isinstance(found, int | float) or not found > 0:
        return None
    return float(found)
