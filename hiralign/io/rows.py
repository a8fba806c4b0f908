"""Row windows of a cube that stays on disk: a memory map or an HDF5 dataset.

A reader that can leave its data on disk hands :func:`~hiralign.io.convert.finish_cube`
an :class:`AxesRows` instead of an array. Slicing it by rows (``rows[y0:y1]``) reads
just those rows, in any storage order (ENVI BSQ/BIL/BIP, HDF5 band-first...), and
returns them as an (h, W, B) array in the file's dtype. After each window the pages of
a memory map are handed back to the kernel (``madvise(MADV_DONTNEED)``): a read-only
file mapping would otherwise stay resident and count in the process's RSS, so reading
a 2 GiB file through a map would cost 2 GiB of RSS although every window is small.
"""
from __future__ import annotations

import contextlib
import mmap
from typing import Any, Iterator

import numpy as np

#: Default bytes of float32 per streamed window (rows × width × bands × 4).
WINDOW_BYTES = 64 * 2**20


class AxesRows:
    """A 3-D array-like on disk seen as (H, W, B), read a window of rows at a time.

    Args:
        source: an ``np.memmap``, ``h5py.Dataset`` or any 3-D array supporting basic
            slicing, in its own storage order.
        axes: positions of (y, x, band) in ``source``'s axes, e.g. (1, 2, 0) for BSQ.
    """

    def __init__(self, source: Any, axes: tuple[int, int, int]) -> None:
        if sorted(axes) != [0, 1, 2]:
            raise ValueError(f"axes {axes} must be a permutation of (0, 1, 2)")
        self.source = source
        self.axes = axes
        shape = tuple(int(n) for n in source.shape)
        self.shape: tuple[int, int, int] = (shape[axes[0]], shape[axes[1]], shape[axes[2]])
        self.dtype = np.dtype(source.dtype)
        self.ndim = 3

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("AxesRows is read by contiguous row slices only")
        key: list[slice] = [slice(None)] * 3
        key[self.axes[0]] = rows
        block = np.asarray(self.source[tuple(key)])
        out = np.ascontiguousarray(block.transpose(self.axes))
        if not out.flags.owndata:  # still a view into the map (BIP): callers get a private copy
            out = out.copy()
        self.release()
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[0:self.shape[0]]
        return out if dtype is None else out.astype(dtype)

    def release(self) -> None:
        """Drop the memory map's resident pages (no-op for other sources)."""
        handle = getattr(self.source, "_mmap", None)
        if handle is not None and hasattr(handle, "madvise"):
            with contextlib.suppress(OSError, ValueError):
                handle.madvise(mmap.MADV_DONTNEED)


def row_windows(height: int, row_bytes: int, budget: int = WINDOW_BYTES) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges covering ``height`` rows, each about ``budget`` bytes."""
    step = max(1, int(budget // max(row_bytes, 1)))
    for start in range(0, height, step):
        yield start, min(height, start + step)


def read_rows(data: Any, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of an (H, W, B) array or :class:`AxesRows`, as an ndarray."""
    return np.asarray(data[start:stop])
