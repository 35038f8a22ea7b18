"""The scikit-learn baselines: PCA then an RBF support-vector machine ("svc") or k-nearest neighbours ("knn").

Both see the prepared pixels (deskewed if the preprocess stage deskews) scaled to [0, 1] and projected onto
the first `pca_components` principal components. The projection is not whitened: whitening would
give the faint, noisy last components as much weight in the RBF and nearest-neighbour distances
as the strokes' main modes of variation.

Probabilities matter downstream (evaluate and ambiguous rank digits by them), so "svc" uses
libsvm's own `probability=True`: Platt sigmoids on every pair of digits, fitted by an internal
5-fold cross-validation, joined by pairwise coupling. scikit-learn 1.9 deprecates that flag in
favour of `CalibratedClassifierCV(SVC(), ensemble=False)`, which calibrates the one-vs-rest
decision values instead, and measured markedly worse log loss here (docs/models.md), so we keep
the flag, which our pinned scikit-learn still supports, and silence only that one warning. "knn"
weighs the k neighbours' votes by inverse distance; its probabilities are those weighted votes.
"""

import pickle
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

from mnist_dvc import NUM_CLASSES
from mnist_dvc.config.params import CLASSICAL_MODELS
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import atomic_path


def flatten_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> float32 rows (N, 784) in [0, 1]; the pipeline's first step."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _classifier(name: str, *, svc_c: float, knn_neighbors: int, seed: int):
    if name not in CLASSICAL_MODELS:
        raise ValueError(f"{name!r} is not one of {CLASSICAL_MODELS}")
    if name == "svc":
        return SVC(kernel="rbf", C=svc_c, gamma="scale", probability=True, random_state=seed, cache_size=1000)
    return KNeighborsClassifier(knn_neighbors, weights="distance")


def fit(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    pca_components: int,
    svc_c: float,
    knn_neighbors: int,
    seed: int,
) -> Pipeline:
    """Fits pixels -> PCA -> classifier on uint8 images (N, 28, 28) and their labels.

    `name` is one of CLASSICAL_MODELS; `pca_components` at most min(N, 784) and `knn_neighbors`
    at most N (the train stage checks both against the data)."""
    pipeline = make_pipeline(
        FunctionTransformer(flatten_pixels),
        PCA(pca_components, random_state=seed),
        _classifier(name, svc_c=svc_c, knn_neighbors=knn_neighbors, seed=seed),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated", category=FutureWarning)
        pipeline.fit(images, labels)
    return pipeline


def predict_proba(estimator: Pipeline, images: np.ndarray) -> np.ndarray:
    """Class probabilities float32 (N, 10); a digit absent from the training labels gets 0."""
    probs = np.zeros((len(images), NUM_CLASSES), np.float32)
    probs[:, estimator.classes_] = estimator.predict_proba(images)
    return probs


def save(estimator: Pipeline, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: str | Path) -> Pipeline:
    """The estimator saved by `save`; a missing or unreadable file is the user's to fix."""
    try:
        with open(path, "rb") as f:
            estimator = pickle.load(f)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the train stage first") from None
    except Exception as error:  # unpickling garbage can raise almost anything
        raise UserError(f"{path}: not a readable saved model ({type(error).__name__}: {error})") from None
    if not isinstance(estimator, Pipeline):
        raise UserError(f"{path}: holds a {type(estimator).__name__}, not a saved classical model")
    return estimator
