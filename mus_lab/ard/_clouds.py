"""Optional cloud probability from the ``s2cloudless`` model (Sentinel Hub), shipped with its package.

The model is a LightGBM pixel classifier trained on **Level-1C top-of-atmosphere** reflectance of
ten bands (B01, B02, B04, B05, B08, B8A, B09, B10, B11, B12). Level-2A products lack B10 (cirrus),
so it cannot run on L2A bands alone: give it the L1C bands of the same dates (e.g. from a
``sentinel-2-l1c`` collection loaded on the same grid). Probabilities are per pixel, so they are
computed chunk by chunk; the mask (averaging + dilation, as the package does it) needs
neighbours and runs with an overlap of ``average_over + dilation_size`` pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as dsa
import numpy as np
import xarray as xr

from mus_lab.errors import ARDError

__all__ = ["S2CLOUDLESS_BANDS", "cloud_probability"]

#: Canonical names of the model's bands, in its order (B01 B02 B04 B05 B08 B8A B09 B10 B11 B12).
S2CLOUDLESS_BANDS: tuple[str, ...] = (
    "coastal", "blue", "red", "rededge1", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22",
)  # fmt: skip


def _detector(threshold: float, average_over: int, dilation_size: int) -> object:
    try:
        from s2cloudless import S2PixelCloudDetector
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ARDError(
            "Cloud probability needs the optional s2cloudless package: pip install 'mus_lab[clouds]'."
        ) from exc
    return S2PixelCloudDetector(
        threshold=threshold, average_over=average_over, dilation_size=dilation_size, all_bands=False
    )


def _proba_block(block: np.ndarray) -> np.ndarray:
    """(band, time, y, x) TOA reflectance -> (time, y, x) probability; NaN where any band is NaN."""
    det = _detector(0.4, 0, 0)
    data = np.moveaxis(block, 0, -1).astype("float32")
    bad = ~np.isfinite(data).all(-1)
    if data.size and np.nanmax(np.where(bad[..., None], 0, data)) > 5:
        raise ARDError(
            "These values look like DN, not reflectance: scale them to 0-1 (L1C: DN / 10000 after "
            "the radiometric offset) before calling cloud_probability."
        )
    proba = det.get_cloud_probability_maps(np.nan_to_num(data))  # type: ignore[attr-defined]
    return np.where(bad, np.float32(np.nan), proba).astype("float32")


def cloud_probability(
    toa: xr.Dataset,
    *,
    bands: Sequence[str] = S2CLOUDLESS_BANDS,
    threshold: float = 0.4,
    average_over: int = 4,
    dilation_size: int = 2,
) -> xr.Dataset:
    """Cloud probability (0-1) and cloud mask per date from the s2cloudless model, lazily.

    Parameters
    ----------
    toa : xarray.Dataset
        Level-1C top-of-atmosphere reflectance (0-1, not DN) with ``time``, ``y``, ``x`` dims,
        holding ``bands`` on one grid (10 m with the defaults below, as the model's authors
        recommend ``average_over=4, dilation_size=2`` there).
    bands : sequence of str, optional
        Names of the model's ten bands in its order (default: canonical names).
    threshold, average_over, dilation_size : float, int, int, optional
        Mask parameters of ``S2PixelCloudDetector``.

    Returns
    -------
    xarray.Dataset
        ``cloud_probability`` (float32, NaN where an input band is missing) and ``cloud_mask``
        (bool), same grid and dates.

    Raises
    ------
    ARDError
        A band is missing (Level-2A has no B10 cirrus band: load the L1C product), or the
        values look like DN rather than reflectance.

    Examples
    --------
    >>> from mus_lab.ard import S2CLOUDLESS_BANDS, cloud_probability
    >>> toa = xr.Dataset(
    ...     {b: (("time", "y", "x"), np.full((1, 8, 8), 0.3, "float32")) for b in S2CLOUDLESS_BANDS}
    ... )
    >>> out = cloud_probability(toa)
    >>> out.cloud_probability.dtype, out.cloud_mask.dtype
    (dtype('float32'), dtype('bool'))
    """
    missing = [b for b in bands if b not in toa]
    if missing:
        raise ARDError(
            f"s2cloudless needs the ten Level-1C bands {list(bands)}; missing {missing}. Level-2A "
            "has no B10 (cirrus): load the L1C product of the same dates on the same grid."
        )
    if len(bands) != len(S2CLOUDLESS_BANDS):
        raise ARDError(f"s2cloudless takes exactly ten bands, got {len(bands)}.")
    _detector(threshold, average_over, dilation_size)  # fail early if the package is missing
    stack = xr.concat([toa[b].astype("float32") for b in bands], dim="band").transpose(
        "band", "time", "y", "x"
    )
    if stack.chunks:
        stack = stack.chunk({"band": -1})
    data = stack.data if isinstance(stack.data, dsa.Array) else dsa.from_array(stack.data)
    proba = dsa.map_blocks(_proba_block, data, drop_axis=0, dtype="float32")
    depth = int(average_over) + int(dilation_size) + 1

    def _mask(block: np.ndarray) -> np.ndarray:
        det = _detector(threshold, average_over, dilation_size)
        return det.get_mask_from_prob(np.nan_to_num(block)).astype(bool)  # type: ignore[attr-defined]

    mask = dsa.map_overlap(
        _mask, proba, depth={0: 0, 1: depth, 2: depth}, boundary="reflect", dtype=bool
    )
    coords = {k: v for k, v in toa.coords.items() if set(v.dims) <= {"time", "y", "x"}}
    dims = ("time", "y", "x")
    return xr.Dataset(
        {
            "cloud_probability": xr.DataArray(proba, dims=dims, coords=coords),
            "cloud_mask": xr.DataArray(mask, dims=dims, coords=coords),
        },
        attrs={"model": "s2cloudless", "threshold": threshold},
    )
