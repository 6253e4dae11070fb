"""Class maps of class-probability cubes (the land-cover contract's ``probability``)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from mus_lab.errors import FusionError
from mus_lab.fusion._blocks import map_planes

__all__ = ["labels_of"]


def labels_of(probability: xr.DataArray) -> xr.DataArray:
    """Each pixel's most probable class code (0 where the probabilities are NaN), lazily.

    Parameters
    ----------
    probability
        Class probabilities ``("class", "y", "x")`` with integer class codes.

    Returns
    -------
    xarray.DataArray
        uint8 class codes ``(y, x)``, dask-backed when the cube is.

    Raises
    ------
    FusionError
        The cube has no ``class`` dimension.

    Example
    -------
    >>> from mus_lab.fusion import labels_of
    >>> p = xr.DataArray(np.array([[[0.2, np.nan]], [[0.8, np.nan]]]), dims=("class", "y", "x"),
    ...                  coords={"class": [4, 7]})
    >>> labels_of(p).values.tolist()
    [[7, 0]]
    """
    if "class" not in probability.dims:
        raise FusionError(
            f"A probability cube needs a 'class' dimension, got dims {probability.dims}: "
            "pass classify.predict(...)['probability']."
        )
    codes = np.asarray(probability["class"].values, dtype=np.uint8)

    def _block(planes: list[np.ndarray], _: list[np.ndarray]) -> tuple[np.ndarray]:
        p = planes[0]
        bad = np.isnan(p).all(axis=0)
        out = codes[np.argmax(np.where(np.isnan(p), -np.inf, p), axis=0)]
        return (np.where(bad, np.uint8(0), out).astype(np.uint8),)

    (out,) = map_planes(
        _block,
        [probability.transpose("class", "y", "x")],
        [],
        [(np.uint8, None)],
        name="labels-of",
        token=codes.tobytes(),
    )
    return out
