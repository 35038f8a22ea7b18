"""Fetching the four MNIST .gz files from a list of sources, each file checked by its hash.

Sources are tried in order; each is a local folder, a file:// URL or an http(s) base URL. A file is accepted
only if the SHA-256 of its *decompressed* bytes matches the official one: the public mirrors and
local copies may wrap the same IDX data in different gzip bytes, so the .gz bytes cannot be the
reference.

A failure that may pass (refused or dropped connection, timeout, HTTP 5xx) is retried with a short
exponential backoff; one that will not (HTTP 4xx, a missing or corrupt file, a wrong hash) moves
straight on to the next source. When every source fails for a file, the error names the file and
each source with the reason it failed.

All four files are built in a temporary folder that replaces the output folder only once every file was
verified (`atomic_dir`). A failed run therefore leaves the folder as it was before, never a mix of
new and missing files that the next stage could mistake for a complete download.
"""

import gzip
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.io.atomic import atomic_dir

# SHA-256 of the decompressed IDX bytes of the official files (named as in `mnist_dvc.config.paths`), in the order they are fetched.
SHA256 = {
    paths.RAW_TRAIN_IMAGES.name: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    paths.RAW_TRAIN_LABELS.name: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    paths.RAW_TEST_IMAGES.name: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    paths.RAW_TEST_LABELS.name: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

BACKOFF_S = 0.5  # wait before the first retry; doubled for each further one
MAX_BACKOFF_S = 4.0
CHUNK_BYTES = 1 << 16


class SourceFailed(Exception):
    """One source did not deliver one good file; `transient` says whether asking again may help."""

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.transient = transient


def verify(name: str, data: bytes) -> None:
    """Raises `SourceFailed` unless `data` is a complete gzip whose content has `name`'s hash."""
    if not data:
        raise SourceFailed("empty file")
    try:
        content = gzip.decompress(data)
    except EOFError:
        raise SourceFailed("truncated gzip") from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise SourceFailed(f"not a valid gzip file: {error}") from None
    got, want = hashlib.sha256(content).hexdigest(), SHA256[name]
    if got != want:
        raise SourceFailed(f"sha256 mismatch: got {got[:12]}.., want {want[:12]}..")


def fetch(source: str, name: str, timeout_s: float) -> bytes:
    """Returns the bytes of `name` from one source (a folder, a file:// or an http(s) base URL)."""
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme in ("http", "https"):
        return _fetch_http(source.rstrip("/") + "/" + name, name, timeout_s)
    if scheme == "file":
        folder = Path(urllib.request.url2pathname(urllib.parse.urlsplit(source).path))
    elif "://" in source:
        raise SourceFailed(f"unsupported URL scheme {scheme}://")
    else:
        folder = Path(source).expanduser()
    try:
        return (folder / name).read_bytes()
    except FileNotFoundError:
        raise SourceFailed("missing") from None
    except OSError as error:
        raise SourceFailed(f"unreadable: {_describe(error, timeout_s)}") from None


def _fetch_http(url: str, name: str, timeout_s: float) -> bytes:
    """Downloads `url` with a progress bar; classifies every failure as transient or not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            expected = response.length  # Content-Length, or None when the server sent none
            chunks = []
            with tqdm(total=expected, desc=name, unit="B", unit_scale=True, file=sys.stderr) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    chunks.append(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        error.close()
        # 429 (too many requests) is the one client error that asks us to come back later.
        raise SourceFailed(f"HTTP {error.code}", transient=error.code >= 500 or error.code == 429) from None
    except urllib.error.URLError as error:
        raise SourceFailed(_describe(error.reason, timeout_s), transient=True) from None
    except (OSError, http.client.HTTPException) as error:
        raise SourceFailed(_describe(error, timeout_s), transient=True) from None
    data = b"".join(chunks)
    # http.client returns a short body without complaint when the connection drops mid-way.
    if expected is not None and len(data) < expected:
        raise SourceFailed(f"connection dropped after {len(data)} of {expected} bytes", transient=True)
    return data


def _describe(error: object, timeout_s: float) -> str:
    """A short reason for a network or file error, without errno noise."""
    if isinstance(error, TimeoutError):
        return f"timed out (no data for {timeout_s:g} s)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error) or type(error).__name__


def fetch_verified(
    source: str, name: str, retries: int, timeout_s: float, backoff_s: float = BACKOFF_S
) -> bytes:
    """Fetches and verifies `name` from one source, retrying transient failures `retries` times."""
    attempt = 0
    while True:
        try:
            data = fetch(source, name, timeout_s)
            verify(name, data)
            return data
        except SourceFailed as failure:
            if not failure.transient:
                raise
            if attempt == retries:
                tries = f"; {attempt + 1} attempts" if attempt else ""
                raise SourceFailed(f"{failure}{tries}", transient=True) from None
        time.sleep(min(backoff_s * 2**attempt, MAX_BACKOFF_S))
        attempt += 1


def download_file(
    name: str, sources: Sequence[str], retries: int, timeout_s: float, backoff_s: float = BACKOFF_S
) -> bytes:
    """Returns the verified bytes of `name` from the first source that has them, else `UserError`."""
    failures = []
    for source in sources:
        try:
            return fetch_verified(source, name, retries, timeout_s, backoff_s)
        except SourceFailed as failure:
            failures.append(f"{source} ({failure})")
    raise UserError(f"{name}: no source worked: {'; '.join(failures) or 'no sources given'}")


def download_all(
    sources: Sequence[str],
    out_dir: str | os.PathLike,
    retries: int,
    timeout_s: float,
    backoff_s: float = BACKOFF_S,
) -> None:
    """Fills `out_dir` with the four verified files, replacing it only if all four succeeded."""
    with atomic_dir(out_dir) as tmp:
        for name in SHA256:
            (tmp / name).write_bytes(download_file(name, sources, retries, timeout_s, backoff_s))
