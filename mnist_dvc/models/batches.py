"""Fixed-size batches over a set of arrays, the last one padded: a jit-compiled function then sees
one shape only and compiles once, whatever the number of digits."""

from collections.abc import Iterator

import numpy as np


def padded_batches(arrays: tuple[np.ndarray, ...], batch_size: int) -> Iterator[tuple[tuple[np.ndarray, ...], int]]:
    """Yields (batch of every array, padded with zeros to `batch_size` rows, count of real rows)."""
    n = len(arrays[0])
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        yield tuple(np.pad(a[start : start + count], [(0, batch_size - count)] + [(0, 0)] * (a.ndim - 1)) for a in arrays), count
