"""The download stage (stages/download.py): where it looks first, and the stage as a real process.
Fetching, checking and retrying are mnist_dvc/io/mirrors.py's, tested in tests/unit/io/test_mirrors.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from http_mirror import dead_url

from mnist_dvc.io.mirrors import SHA256, download_all
from stages.download import MIRROR_ENV, sources_to_try

FIRST = next(iter(SHA256))  # the first file fetched, so the one a dead source fails on


def assert_downloaded(out: Path, mnist_mirror: Path):
    assert sorted(p.name for p in out.iterdir()) == sorted(SHA256)
    for name in SHA256:
        assert (out / name).read_bytes() == (mnist_mirror / name).read_bytes()


def test_mirror_from_environment_comes_first(monkeypatch):
    assert MIRROR_ENV == "MNIST_MIRROR"  # the name README and the tests' conftest.py give users
    monkeypatch.setenv("MNIST_MIRROR", "/somewhere/mnist")
    assert sources_to_try(["https://a/", "https://b/"]) == ["/somewhere/mnist", "https://a/", "https://b/"]
    monkeypatch.setenv("MNIST_MIRROR", "  ")
    assert sources_to_try(["https://a/"]) == ["https://a/"]
    monkeypatch.delenv("MNIST_MIRROR")
    assert sources_to_try(["https://a/"]) == ["https://a/"]


@pytest.mark.parametrize("as_url", [False, True], ids=["folder", "file-url"])
def test_local_mirror_from_environment_is_used_first(as_url, mnist_mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_MIRROR", mnist_mirror.as_uri() if as_url else str(mnist_mirror))
    out = tmp_path / "raw"
    download_all(sources_to_try([dead_url()]), out, retries=3, timeout_s=5.0, backoff_s=0.01)
    assert_downloaded(out, mnist_mirror)


# --- the stage as a real process ---------------------------------------------------------------


@pytest.fixture
def run_stage_process(repo_root, edit_params):
    """`run_stage_process(cwd, mirrors, mnist_mirror="")`: the download stage as a process in `cwd`, with
    the shipped params.yaml trying `mirrors` once each (2 s timeout) and MNIST_MIRROR = `mnist_mirror`."""

    def run(cwd: Path, mirrors: list[str], mnist_mirror: str = ""):
        shutil.copy(repo_root / "params.yaml", cwd / "params.yaml")
        edit_params(cwd, {"download.mirrors": mirrors, "download.retries": 0, "download.timeout_s": 2.0})
        env = {**os.environ, "PYTHONPATH": str(repo_root), "MNIST_MIRROR": mnist_mirror}
        return subprocess.run(
            [sys.executable, "-m", "stages.download"],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        )

    return run


def test_stage_fails_with_one_error_line_when_no_mirror_answers(run_stage_process, tmp_path):
    dead = dead_url()
    result = run_stage_process(tmp_path, [dead])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0] == f"error: {FIRST}: no source worked: {dead} (connection refused)"
    assert not (tmp_path / "data" / "raw").exists()


def test_stage_fills_data_raw_from_the_local_mirror(run_stage_process, mnist_mirror, tmp_path):
    result = run_stage_process(tmp_path, [dead_url()], mnist_mirror=str(mnist_mirror))
    assert result.returncode == 0, result.stderr
    assert_downloaded(tmp_path / "data" / "raw", mnist_mirror)
