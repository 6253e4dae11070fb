"""Sentinel-1 and RCM backscatter to analysis-ready data on the reference (Sentinel-2) grid.

:func:`prepare_s1` takes geocoded sigma0 items (linear, float32) and loads them onto the
GeoBox with bilinear resampling in linear power (never in dB, which would bias the mean).
:func:`prepare_rcm` takes RCM product folders (uint16 magnitude DN with per-column LUTs):
the LUT gains and noise levels are given per *image column*, so each product is calibrated
in its native geometry first, then reprojected onto the GeoBox. Both return the same
Dataset: one float32 variable per polarisation (linear, or dB with ``db=True``), a ``mask``
(uint8 :class:`~mus_lab.ard.DataMask` codes: 0 no data, 1 valid, 2 invalid) and per-date
``orbit_state`` / ``relative_orbit`` coordinates. Everything stays lazy.

Speckle filtering runs where the speckle statistics hold: in the native geometry for RCM;
for Sentinel-1 (already geocoded items) on the grid after loading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import cube
from mus_lab.ard._rcm import RcmProduct, open_rcm
from mus_lab.ard._s1 import DataMask, data_mask
from mus_lab.ard._sar_common import to_db
from mus_lab.ard._speckle import speckle_filter
from mus_lab.errors import ARDError

__all__ = ["prepare_rcm", "prepare_s1"]

Speckle = Literal["lee", "refined_lee", "lee_sigma"] | None
Calibration = Literal["sigma0", "beta0", "gamma0"]


def _check_pols(polarisations: Sequence[str]) -> tuple[str, ...]:
    pols = tuple(p.lower() for p in polarisations)
    if not pols:
        raise ARDError("polarisations is empty: pass e.g. ('vv', 'vh').")
    return pols


def _combined_mask(codes: Sequence[xr.DataArray]) -> xr.DataArray:
    """One mask for all polarisations: no data if any has none, else the worst code."""
    stacked = xr.concat(list(codes), "pol")
    worst = stacked.max("pol")
    out = xr.where((stacked == DataMask.NO_DATA).any("pol"), 0, worst).astype(np.uint8)
    out.name = "mask"
    out.attrs = {
        "flag_values": [int(m) for m in DataMask],
        "flag_meanings": " ".join(m.name.lower() for m in DataMask),
    }
    return out


def _finish(
    values: Mapping[str, xr.DataArray],
    mask: xr.DataArray,
    *,
    db: bool,
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    # Pixels whose value became NaN on the grid (bilinear weights touching no data at a
    # swath edge) are no data, whatever the nearest native code said.
    any_nan = xr.concat([v.isnull() for v in values.values()], "pol").any("pol")
    mask = xr.where(any_nan & (mask == DataMask.VALID), 0, mask).astype(np.uint8)
    mask.attrs = {
        "flag_values": [int(m) for m in DataMask],
        "flag_meanings": " ".join(m.name.lower() for m in DataMask),
    }
    out = {}
    for pol, arr in values.items():
        arr = arr.astype(np.float32)
        units = "linear power"
        if db:
            arr = to_db(arr)
            units = "dB"
        out[pol] = arr.assign_attrs(units=units, polarisation=pol.upper())
    ds = xr.Dataset(out)
    ds["mask"] = mask
    ds.attrs = dict(attrs) | {"db": int(db)}
    return ds


def prepare_s1(
    items: Any,
    *,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    polarisations: Sequence[str] = ("vv", "vh"),
    speckle: Speckle = None,
    window: int = 7,
    db: bool = False,
    chunks: Mapping[str, int] | int | None = None,
) -> xr.Dataset:
    """Geocoded Sentinel-1 sigma0 items as analysis-ready backscatter on the grid.

    Parameters
    ----------
    items
        Sentinel-1 items whose polarisation assets hold geocoded linear sigma0 (float32,
        NaN = no data), e.g. ``catalog.search(..., collections="sentinel-1-grd")``.
    geobox, bbox
        Target grid: ``geobox`` (pass the Sentinel-2 ARD's, ``cube.geobox_of(s2)``, to
        share its grid), else the Sentinel-2 10 m grid of ``bbox`` or of the items.
    polarisations
        Asset names to load, default ``("vv", "vh")``.
    speckle
        ``None`` (default), ``"lee"``, ``"refined_lee"`` or ``"lee_sigma"``
        (:func:`mus_lab.ard.speckle_filter`), applied on the grid.
    window
        Speckle filter window (odd).
    db
        Return the backscatter in dB instead of linear power.
    chunks
        Dask chunks (see :func:`mus_lab.cube.load`).

    Returns
    -------
    xarray.Dataset
        One float32 variable per polarisation, ``mask`` (uint8: 0 no data, 1 valid,
        2 invalid), ``orbit_state`` / ``relative_orbit`` on ``time``; lazy.

    Raises
    ------
    ARDError
        No polarisation asked for, or a speckle option is wrong.
    AssetError
        An item lacks a polarisation asset.

    Example
    -------
    >>> from mus_lab import catalog, sample
    >>> sc = sample.generate("/tmp/mus_lab_doc", size=64, overwrite=True)  # doctest: +SKIP
    >>> s1 = catalog.search(sc.catalog_path, collections="sentinel-1-grd")  # doctest: +SKIP
    >>> prepare_s1(s1, speckle="lee", db=True).vv.dims  # doctest: +SKIP
    ('time', 'y', 'x')
    """
    pols = _check_pols(polarisations)
    raw = cube.load(items, pols, geobox=geobox, bbox=bbox, resampling="bilinear", chunks=chunks)
    codes = [data_mask(raw[p], raw[p]) for p in pols]
    values = {}
    for p in pols:
        arr = raw[p].astype(np.float32)
        if speckle is not None:
            arr = speckle_filter(arr, speckle, window=window)
        values[p] = arr
    keep = [c for c in ("orbit_state", "relative_orbit", "platform", "item_ids") if c in raw.coords]
    ds = _finish(
        values,
        _combined_mask(codes),
        db=db,
        attrs={"product": "s1_sigma0_ard", "speckle": speckle or "none", "resampling": "bilinear"},
    )
    return ds.assign_coords({c: raw.coords[c] for c in keep})


def _product_of(item: pystac.Item) -> RcmProduct:
    asset = item.assets.get("product")
    if asset is None:
        raise ARDError(
            f"RCM item {item.id!r} has no 'product' asset (metadata/product.xml): prepare_rcm "
            "needs the product folder to calibrate; add the asset (role 'metadata') or pass "
            f"items of an RCM product collection. The item offers {sorted(item.assets)}."
        )
    return open_rcm(asset.get_absolute_href() or asset.href)


def _native_geobox(prod: RcmProduct, pol: str) -> GeoBox:
    import rasterio

    with rasterio.open(prod.imagery_path(pol)) as src:
        if src.crs is None:
            raise ARDError(
                f"{prod.imagery_path(pol)} carries no CRS: prepare_rcm needs a geocoded product "
                "(e.g. GCD/GCC); terrain-correct slant or ground-range products first."
            )
        return GeoBox(src.shape, src.transform, src.crs)


def prepare_rcm(
    items: Any,
    *,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    polarisations: Sequence[str] = ("vv", "vh"),
    calibration: Calibration = "sigma0",
    noise: bool = True,
    speckle: Speckle = None,
    window: int = 7,
    db: bool = False,
    chunks: int = 2048,
) -> xr.Dataset:
    """RCM product items, calibrated in native geometry, as analysis-ready data on the grid.

    Parameters
    ----------
    items
        RCM items with a ``product`` asset (``metadata/product.xml``) of a geocoded
        product, e.g. ``catalog.search(..., collections="rcm-grd")``.
    geobox, bbox
        Target grid: ``geobox`` (pass the Sentinel-2 ARD's to share its grid), else the
        Sentinel-2 10 m grid of ``bbox`` or of the items.
    polarisations
        Polarisations to calibrate, default ``("vv", "vh")``.
    calibration
        ``"sigma0"`` (default), ``"beta0"`` or ``"gamma0"``: which LUT to apply.
    noise
        Subtract the product's noise levels (default True).
    speckle
        ``None`` (default), ``"lee"``, ``"refined_lee"`` or ``"lee_sigma"``, applied in
        the native geometry before reprojection.
    window
        Speckle filter window (odd).
    db
        Return the backscatter in dB instead of linear power.
    chunks
        Block size of the native imagery read (pixels).

    Returns
    -------
    xarray.Dataset
        As :func:`prepare_s1`: float32 per polarisation, ``mask``, ``orbit_state`` /
        ``relative_orbit`` on ``time``; lazy.

    Raises
    ------
    ARDError
        An item has no ``product`` asset or its imagery no CRS.
    ProductFileError
        A LUT or noise file named in product.xml is missing (an :class:`ARDError`).

    Example
    -------
    >>> rcm = catalog.search(sc.catalog_path, collections="rcm-grd")  # doctest: +SKIP
    >>> prepare_rcm(rcm, geobox=cube.geobox_of(s2_ard), db=True)  # doctest: +SKIP
    """
    from mus_lab.cube._load import _as_items

    pols = _check_pols(polarisations)
    item_list = sorted(_as_items(items), key=lambda it: pd.Timestamp(it.datetime))
    if geobox is None:
        geobox = cube.reference_geobox(item_list, bbox=bbox)
    dates: list[dict[str, xr.DataArray]] = []
    masks: list[xr.DataArray] = []
    for item in item_list:
        prod = _product_of(item)
        src = _native_geobox(prod, pols[0])
        coords = _xr_coords(src)
        per_pol: dict[str, xr.DataArray] = {}
        codes = []
        for p in pols:
            dn = prod.open_imagery(p, chunks=chunks)
            cal = prod.calibrated(p, to=calibration, remove_noise=noise, chunks=chunks)
            codes.append(data_mask(dn, cal))
            if speckle is not None:
                cal = speckle_filter(cal, speckle, window=window)
            native = cal.rename(line="y", pixel="x").drop_vars(["y", "x"]).assign_coords(coords)
            per_pol[p] = native.odc.reproject(geobox, resampling="bilinear").astype(np.float32)
        code = _combined_mask(codes).rename(line="y", pixel="x").drop_vars(["y", "x"])
        masks.append(
            code.assign_coords(coords)
            .odc.reproject(geobox, resampling="nearest", dst_nodata=0)
            .astype(np.uint8)
        )
        dates.append(per_pol)
    time = pd.DatetimeIndex([pd.Timestamp(it.datetime).tz_localize(None) for it in item_list])
    values = {p: xr.concat([d[p] for d in dates], pd.Index(time, name="time")) for p in pols}
    mask = xr.concat(masks, pd.Index(time, name="time"))
    ds = _finish(
        values,
        mask,
        db=db,
        attrs={
            "product": f"rcm_{calibration}_ard",
            "calibration": calibration,
            "noise_removed": int(noise),
            "speckle": speckle or "none",
            "resampling": "bilinear",
        },
    )
    meta = {
        "orbit_state": "sat:orbit_state",
        "relative_orbit": "sat:relative_orbit",
        "platform": "platform",
    }
    extra = {}
    for name, key in meta.items():
        vals = [it.properties.get(key) for it in item_list]
        if all(v is not None for v in vals):
            extra[name] = ("time", np.asarray(vals))
    extra["item_ids"] = ("time", np.asarray([it.id for it in item_list]))
    return ds.assign_coords(extra)


def _xr_coords(gbox: GeoBox) -> dict[Any, xr.DataArray]:
    from odc.geo.xr import xr_coords

    return dict(xr_coords(gbox))
