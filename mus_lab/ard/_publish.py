"""Write analysis-ready cubes as ARD products (through :mod:`mus_lab.publish`).

ARD follows the one validity convention of :mod:`mus_lab.contracts`: measurements plus
``valid`` (bool) and ``quality`` (uint8 bits of the sensor family).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pystac
import xarray as xr

from mus_lab.contracts import ARD_CONTRACTS, SAR_POLARISATIONS, SAR_QUALITY_BITS
from mus_lab.errors import ARDError, PublishError
from mus_lab.publish import ArdProduct

__all__ = ["sar_validity", "write"]


def sar_validity(mask: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """``valid`` and ``quality`` of SAR ARD from CEOS-ARD data-mask codes (0 no data, 1 valid,
    2 measured but unusable).

    Parameters
    ----------
    mask
        uint8 :class:`~mus_lab.ard.DataMask` codes.

    Returns
    -------
    (valid, quality)
        bool, and uint8 bits of :data:`mus_lab.contracts.SAR_QUALITY_BITS`; lazy stays lazy.

    Examples
    --------
    >>> valid, quality = sar_validity(xr.DataArray(np.array([0, 1, 2], np.uint8)))
    >>> valid.values.tolist(), quality.values.tolist()
    ([False, True, False], [1, 0, 2])
    """
    nodata = np.uint8(1 << SAR_QUALITY_BITS["nodata"])
    unusable = np.uint8(1 << SAR_QUALITY_BITS["unusable"])
    quality = xr.where(mask == 0, nodata, xr.where(mask == 2, unusable, np.uint8(0)))
    quality = quality.astype(np.uint8).rename("quality")
    quality.attrs = {"flag_bits": dict(SAR_QUALITY_BITS)}
    return (mask == 1).rename("valid"), quality


def _sensor_of(ds: xr.Dataset, collection: str | None) -> str:
    if "gapfill_every_days" in ds.attrs:  # ard.s2_time_series: filled, no validity layers
        return "s2-series"
    if collection:
        for key, contract in ARD_CONTRACTS.items():
            if collection == contract.collection:
                return key
        if collection.startswith("rcm"):
            return "rcm"
    if any(p in ds.data_vars for p in SAR_POLARISATIONS):
        return "s1"
    return "s2"


def write(
    ds: xr.Dataset,
    catalog: str | os.PathLike[str],
    collection: str | None = None,
    *,
    sensor: str | None = None,
    sources: Iterable[Any] = (),
    parameters: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> pystac.Collection:
    """Write an ARD cube (optical or SAR) into a local catalog, one item per date.

    Parameters
    ----------
    ds
        What :func:`prepare_s2`, :func:`prepare_s1` or :func:`prepare_rcm` returned (a subset
        of its measurements is fine; ``valid`` and ``quality`` are needed; a SAR ``mask`` of
        data-mask codes is turned into them).
    catalog
        Local catalog folder or ``catalog.json``.
    collection
        Collection id (default: the sensor's ARD collection, e.g. ``s2-l2a-ard``).
    sensor
        ``"s2"``, ``"s2-series"`` (gap-filled, :func:`s2_time_series`), ``"s1"`` or ``"rcm"``
        (default: from ``collection``, else from the variables).
    sources
        Source STAC items (``derived_from``).
    parameters
        Processing parameters to record.
    overwrite
        Replace an ARD collection of the same id (its dates are not merged).

    Returns
    -------
    pystac.Collection
        One item per date (``<collection>-YYYYMMDD``), read back from disk.

    Raises
    ------
    ARDError
        No valid pixel in any date; ``valid`` or ``quality`` missing; no catalog there; the
        collection exists and ``overwrite`` is False; a source raster is corrupt.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from mus_lab import ard, catalog
    >>> items = catalog.search(tiny.catalog_path, collections="sentinel-2-l2a")
    >>> s2 = ard.prepare_s2(items[:2], bands=("red", "nir"))
    >>> mine = shutil.copytree(tiny.catalog_path.parent, Path(tempfile.mkdtemp()) / "catalog")
    >>> coll = ard.write(s2, mine, sensor="s2")
    >>> sorted(next(coll.get_items()).assets)
    ['nir', 'quality', 'red', 'valid']
    """
    if "mask" in ds.data_vars and "valid" not in ds.data_vars:
        valid, quality = sar_validity(ds["mask"])
        ds = ds.drop_vars("mask").assign(valid=valid, quality=quality)
    kind = sensor or _sensor_of(ds, collection)
    if kind not in ARD_CONTRACTS:
        raise ARDError(f"sensor={kind!r}: choose among {sorted(ARD_CONTRACTS)}.")
    product = ArdProduct(
        ds,
        collection=collection or ARD_CONTRACTS[kind].collection,
        sources=tuple(sources),
        parameters=dict(parameters or {}),
        sensor=kind,
    )
    try:
        return product.write(catalog, overwrite=overwrite)
    except PublishError as exc:  # the ARD stage's own error class, same message
        raise ARDError(str(exc)) from exc
