"""Stage `download`: the four MNIST .gz files into data/raw, each checked by its hash (`mnist_dvc.io.mirrors`).

Sources, in order: `$MNIST_MIRROR` when set (a local folder, a file:// URL or an http(s) base URL,
for machines without internet), then each of `download.mirrors`. A failure names every source
tried and why it failed, and leaves data/raw as it was.
"""

import os

from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.errors import run_stage
from mnist_dvc.io.mirrors import SHA256, download_all

MIRROR_ENV = "MNIST_MIRROR"


def sources_to_try(mirrors: list[str]) -> list[str]:
    """The sources to try, in order: `$MNIST_MIRROR` (when set and not empty), then `mirrors`."""
    local = os.environ.get(MIRROR_ENV, "").strip()
    return [local, *mirrors] if local else list(mirrors)


def main() -> None:
    params = load_params("download")
    download_all(sources_to_try(params.mirrors), paths.RAW, params.retries, params.timeout_s)
    print(f"{paths.RAW}: {len(SHA256)} files verified")


if __name__ == "__main__":
    run_stage(main)
