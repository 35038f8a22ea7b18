"""Writes that either complete or leave nothing: a crash never leaves a file that looks finished.

Every output goes to a temporary name in the same folder and is renamed into place only after it
was written in full; `os.replace` is atomic on one filesystem, so readers (and DVC) see either
the old file, the new file, or no file, never half of one.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

# mkstemp/mkdtemp create owner-only entries; outputs get the modes a plain open()/mkdir() would.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it to `path` if the block succeeds.

    The temporary name keeps `path`'s suffix so that libraries which pick a format by extension
    (matplotlib, PIL) still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a fresh temporary folder beside `path`; swaps it in for `path` if the block succeeds.

    The old folder is renamed aside before the new one takes its name, so `path` is only ever
    the old folder whole, the new one whole, or (for an instant) absent; never a mix. Leftovers
    of a run that was killed (which cannot clean up after itself) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = tmp.with_name(tmp.name.removesuffix(".tmp") + ".old.tmp")
    try:
        yield tmp
        tmp.chmod(0o777 & ~_UMASK)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    """Writes JSON with sorted keys and a final newline, so equal results give equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Saves arrays uncompressed (loading is then a plain read), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def write_csv(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Writes a table as CSV, without the index and with "\\n" line ends on every platform."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n")
