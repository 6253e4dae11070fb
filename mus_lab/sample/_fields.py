"""Smooth random fields that are cheap to evaluate on any block of rows.

A field is a small seeded grid of Gaussian noise (one node every ``cell`` pixels)
interpolated with the Keys cubic kernel. The interpolation is separable, so a block
of the full-resolution field is two small matrix products: memory and time grow with
the block, never with the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["SmoothField", "make_field", "rng_for"]

F32 = NDArray[np.float32]


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator for one stream (sensor, date, block...) of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _keys_weights(t: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    a = -0.5
    out = []
    for off in (-1, 0, 1, 2):
        x = np.abs(t - off)
        w = np.where(
            x <= 1,
            (a + 2) * x**3 - (a + 3) * x**2 + 1,
            np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0),
        )
        out.append(w)
    return out


def _matrix(pos: NDArray[np.float64], n: int) -> NDArray[np.float32]:
    """Dense (len(pos), n) interpolation matrix for coarse coordinates ``pos``."""
    i = np.floor(pos).astype(np.int64)
    t = pos - i
    mat = np.zeros((pos.size, n), np.float32)
    rows = np.arange(pos.size)
    for off, w in zip((-1, 0, 1, 2), _keys_weights(t), strict=True):
        np.add.at(mat, (rows, np.clip(i + off, 0, n - 1)), w.astype(np.float32))
    return mat


@dataclass(frozen=True)
class SmoothField:
    """A smooth zero-mean, unit-variance random field over the 10 m pixel grid.

    Attributes
    ----------
    coarse : ndarray
        Node values; node ``k`` sits at pixel coordinate ``(k - 1) * cell``.
    cell : float
        Node spacing in 10 m pixels (the correlation length of the field).
    """

    coarse: F32
    cell: float

    def block(
        self,
        rows: NDArray[np.float64],
        cols: NDArray[np.float64],
    ) -> F32:
        """Field values on the outer product of pixel-centre coordinates ``rows`` x ``cols``."""
        wr = _matrix(rows / self.cell + 1.0, self.coarse.shape[0])
        wc = _matrix(cols / self.cell + 1.0, self.coarse.shape[1])
        out: F32 = ((wr @ self.coarse) @ wc.T).astype(np.float32)
        return out

    def at(self, rows: NDArray[np.float64], cols: NDArray[np.float64]) -> F32:
        """Field values at scattered pixel coordinates (any shape)."""
        coords = np.stack([rows / self.cell + 1.0, cols / self.cell + 1.0])
        out = ndimage.map_coordinates(self.coarse, coords, order=3, mode="nearest")
        return out.astype(np.float32)


def make_field(rng: np.random.Generator, size: int, cell: float) -> SmoothField:
    """Draw a field covering a ``size`` x ``size`` pixel scene (plus margins)."""
    cell = max(float(cell), 1.0)
    n = int(np.ceil(size / cell)) + 4
    raw = ndimage.gaussian_filter(rng.standard_normal((n, n)), 0.8, mode="wrap")
    raw = (raw - raw.mean()) / (raw.std() + 1e-9)
    return SmoothField(raw.astype(np.float32), cell)


def pixel_centres(start: int, stop: int) -> NDArray[np.float64]:
    """Pixel-centre coordinates of pixels ``start..stop-1``."""
    return np.arange(start, stop, dtype=np.float64) + 0.5
