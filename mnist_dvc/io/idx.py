"""Reads MNIST's gzip'd IDX files into numpy arrays, refusing anything that is not exactly right.

A download can be cut short, a mirror can serve an HTML error page, and files can be swapped; each
of these must stop the pipeline with one line naming the file, never a numpy reshape traceback or,
worse, a silently misaligned data set.
"""

import gzip
import zlib
from pathlib import Path

import numpy as np

from mnist_dvc import IMAGE_SIDE, NUM_CLASSES
from mnist_dvc.errors import UserError, read_user_file

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

_GZIP_SIGNATURE = b"\x1f\x8b"
_KIND_BY_MAGIC = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


def _decompress(path: Path) -> bytes:
    """The decompressed bytes of `path`, or a `UserError` saying why there are none."""
    compressed = read_user_file(path)
    if not compressed:
        raise UserError(f"{path}: empty file")
    if not compressed.startswith(_GZIP_SIGNATURE):
        raise UserError(f"{path}: not a gzip file")
    try:
        return gzip.decompress(compressed)
    except EOFError:
        raise UserError(f"{path}: truncated gzip data (the download was probably cut short)") from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise UserError(f"{path}: corrupt gzip data: {error}") from None


def _parse(path: Path, expected_magic: int) -> np.ndarray:
    """Checks the IDX header against the data length and returns the data, shaped by the header."""
    data = _decompress(path)
    ndim = 3 if expected_magic == IMAGES_MAGIC else 1
    header_size = 4 * (1 + ndim)
    if len(data) < 4:
        raise UserError(f"{path}: IDX header cut short ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        found = _KIND_BY_MAGIC.get(magic, "unknown")
        raise UserError(
            f"{path}: wrong magic number {magic} ({found}); expected {expected_magic} "
            f"({_KIND_BY_MAGIC[expected_magic]})"
        )
    if len(data) < header_size:
        raise UserError(f"{path}: IDX header cut short ({len(data)} of {header_size} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if ndim == 3 and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise UserError(
            f"{path}: images are {dims[1]}x{dims[2]} pixels; expected {IMAGE_SIDE}x{IMAGE_SIDE}"
        )
    expected = header_size + int(np.prod(dims))
    if len(data) != expected:
        problem = "too short" if len(data) < expected else "too long"
        raise UserError(
            f"{path}: data {problem}: header says {' x '.join(map(str, dims))} "
            f"({expected} bytes in all), file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def read_images(path: str | Path) -> np.ndarray:
    """The images of an IDX3 file as uint8 (N, 28, 28)."""
    return _parse(Path(path), IMAGES_MAGIC)


def read_labels(path: str | Path) -> np.ndarray:
    """The labels of an IDX1 file as uint8 (N,); their range is checked by `read_split`."""
    return _parse(Path(path), LABELS_MAGIC)


def read_split(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) and labels (N,) of one split, checked to belong together."""
    images = read_images(images_path)
    labels = read_labels(labels_path)
    if len(images) != len(labels):
        raise UserError(
            f"{labels_path}: {len(labels)} labels but {images_path} holds {len(images)} images"
        )
    if len(labels) and labels.max() >= NUM_CLASSES:
        position = int(np.argmax(labels >= NUM_CLASSES))
        raise UserError(
            f"{labels_path}: label {labels[position]} at position {position} is not a digit 0-9"
        )
    return images, labels
