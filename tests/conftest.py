"""Fixtures shared by the test modules: where the project and the real MNIST files are."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def mnist_mirror() -> Path:
    """The local folder holding the four official MNIST .gz files (`MNIST_MIRROR`, else ../shared/mnist)."""
    folder = Path(os.environ.get("MNIST_MIRROR", REPO_ROOT.parent / "shared" / "mnist"))
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.fail(f"MNIST files not found in {folder}; set MNIST_MIRROR to a folder holding them")
    return folder
