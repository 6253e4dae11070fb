"""Sentinel-2 L2A to analysis-ready surface reflectance on the 10 m grid, with per-pixel quality.

One call: :func:`prepare_s2` loads the bands and the mask onto the grid (20 m bands with a
cubic kernel as IOTA² does, masks with nearest neighbour), converts DN to reflectance with the
offset and quantification declared by each date's item (``raster:bands``) or given from the
product metadata (``MTD_MSIL2A.xml``), never from the date, and adds the bit-coded ``quality``
layer and a boolean ``valid`` layer. Everything stays lazy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import cube
from mus_lab.ard._masks import (
    QUALITY_BITS,
    SCL_INVALID_DEFAULT,
    maja_quality,
    scl_quality,
    valid_from_maja,
    valid_from_scl,
)
from mus_lab.ard._s2_metadata import S2L2AMetadata
from mus_lab.errors import ARDError

__all__ = ["S2_BANDS", "S2_PHYSICAL", "prepare_s2", "reflectance"]

S2_BANDS: tuple[str, ...] = (
    "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22",
)  # fmt: skip
#: Canonical name -> Sentinel-2 physical band (for product metadata).
S2_PHYSICAL: Mapping[str, str] = dict(
    zip(
        S2_BANDS,
        ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
        strict=True,
    )
)
SATURATED_DN = 65535


def _scale_offset(
    ds: xr.Dataset, band: str, metadata: Sequence[S2L2AMetadata] | S2L2AMetadata | None
) -> tuple[xr.DataArray | float, xr.DataArray | float]:
    if metadata is not None:
        metas = [metadata] if isinstance(metadata, S2L2AMetadata) else list(metadata)
        if len(metas) == 1:
            return metas[0].scale_offset(S2_PHYSICAL.get(band, band))
        if len(metas) != ds.sizes["time"]:
            raise ARDError(
                f"{len(metas)} product metadata for {ds.sizes['time']} dates: give one per date (in time order) or one for all."
            )
        pairs = [m.scale_offset(S2_PHYSICAL.get(band, band)) for m in metas]
        return (
            xr.DataArray([p[0] for p in pairs], dims="time", coords={"time": ds.time}),
            xr.DataArray([p[1] for p in pairs], dims="time", coords={"time": ds.time}),
        )
    if not cube.has_scaling(ds, band):
        raise ARDError(
            f"The items give no scale/offset for {band!r} (STAC raster:bands): the BOA offset of "
            "processing baseline 04.00+ cannot be guessed. Pass metadata=read_l2a_metadata(MTD_MSIL2A.xml)."
        )
    scale, offset = cube.scaling(ds, band)
    missing = np.isnan(scale.values) | np.isnan(offset.values)
    if missing.any():
        ids = ds["item_ids"].values[missing] if "item_ids" in ds.coords else ds.time.values[missing]
        raise ARDError(
            f"Items {list(map(str, ids))} lack the scale/offset of {band!r} that the other dates declare: "
            "fix their raster:bands or pass metadata=read_l2a_metadata(...) per date."
        )
    return scale, offset


def reflectance(
    ds: xr.Dataset,
    bands: Iterable[str] = S2_BANDS,
    *,
    metadata: Sequence[S2L2AMetadata] | S2L2AMetadata | None = None,
    nodata: int = 0,
) -> xr.Dataset:
    """DN to surface reflectance (float32, NaN where DN is nodata or saturated), lazily."""
    out = {}
    for band in bands:
        if band not in ds:
            raise ARDError(
                f"Band {band!r} is missing from the cube: load it (cube has {sorted(map(str, ds.data_vars))})."
            )
        scale, offset = _scale_offset(ds, band, metadata)
        dn = ds[band]
        refl = (dn.astype("float32") * scale + offset).astype("float32")
        out[band] = refl.where((dn != nodata) & (dn != SATURATED_DN))
        out[band].attrs = {
            "units": "1",
            "long_name": f"surface reflectance {S2_PHYSICAL.get(band, band)}",
        }
    return xr.Dataset(
        out,
        coords={k: v for k, v in ds.coords.items() if not str(k).endswith(("_scale", "_offset"))},
    )


def prepare_s2(
    items: Any,
    *,
    bands: Sequence[str] = S2_BANDS,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    invalid_classes: Iterable[int] = SCL_INVALID_DEFAULT,
    metadata: Sequence[S2L2AMetadata] | S2L2AMetadata | None = None,
    resampling: str = "cubic",
    chunks: Mapping[str, int] | int | None = None,
    mask_format: str | None = None,
) -> xr.Dataset:
    """Sentinel-2 L2A surface reflectance on the 10 m grid with ``quality`` and ``valid``.

    Parameters
    ----------
    items
        Sentinel-2 L2A items (a search result) or an already loaded DN cube (Dataset).
    bands
        Reflectance bands (canonical names), default the ten IOTA² bands.
    geobox, bbox
        Target grid (default: the Sentinel-2 10 m grid of the items or bbox).
    invalid_classes
        SCL classes treated as invalid (default {0, 1, 3, 8, 9, 10}); ignored for MAJA.
    metadata
        Product metadata (one, or one per date) when the items lack ``raster:bands``.
    resampling
        Kernel for 20 m bands onto 10 m (``"cubic"``, IOTA²'s choice; ``"bilinear"``...).
    mask_format
        ``"scl"`` or ``"maja"``; detected from the items' assets by default.

    Returns
    -------
    xarray.Dataset
        Reflectance bands (float32, NaN = no data), ``quality`` (uint8 bits, see
        :data:`mus_lab.ard.QUALITY_BITS`) and ``valid`` (bool), lazy.

    Raises
    ------
    ARDError
        A band or the mask is missing, or the offset is unknown.
    """
    if isinstance(items, xr.Dataset):
        raw = items
    else:
        from mus_lab.cube._load import _as_items

        item_list = _as_items(items)
        assets = set(item_list[0].assets)
        fmt = mask_format or (
            "scl" if "scl" in assets else "maja" if {"clm", "edg"} <= assets else None
        )
        if fmt is None:
            raise ARDError(
                f"Item {item_list[0].id!r} has no mask asset ('scl' for Sen2Cor, 'clm'/'edg'/'sat'/'mg2' for MAJA): "
                "search a collection that carries one."
            )
        mask_bands = (
            ("scl",)
            if fmt == "scl"
            else tuple(b for b in ("clm", "edg", "sat", "mg2") if b in assets)
        )
        missing = [b for b in bands if b not in assets]
        if missing:
            raise ARDError(
                f"Item {item_list[0].id!r} lacks band(s) {missing}: choose bands among {sorted(assets)}."
            )
        rs = {b: resampling for b in bands} | dict.fromkeys(mask_bands, "nearest")
        raw = cube.load(
            item_list, (*bands, *mask_bands), geobox=geobox, bbox=bbox, resampling=rs, chunks=chunks
        )
    refl = reflectance(raw, bands, metadata=metadata)
    any_band_missing = xr.concat([refl[b].isnull() for b in bands], "band").any("band")
    saturated = xr.concat([raw[b] == SATURATED_DN for b in bands], "band").any("band")
    if "scl" in raw:
        quality = scl_quality(raw.scl)
        valid = valid_from_scl(raw.scl, invalid_classes)
    elif "clm" in raw and "edg" in raw:
        sat = raw["sat"] if "sat" in raw else None
        quality = maja_quality(raw.clm, raw.edg, sat, raw["mg2"] if "mg2" in raw else None)
        valid = valid_from_maja(raw.clm, raw.edg, sat)
    else:
        raise ARDError(
            "The cube has no mask ('scl', or MAJA 'clm' and 'edg'): load it with the bands."
        )
    quality = (
        quality
        | xr.where(any_band_missing, 1 << QUALITY_BITS["nodata"], 0).astype("uint8")
        | xr.where(saturated, 1 << QUALITY_BITS["saturated"], 0).astype("uint8")
    ).astype("uint8")
    refl["quality"] = quality
    refl["valid"] = valid & ~any_band_missing & ~saturated
    refl.attrs = {
        "product": "s2_l2a_ard",
        "invalid_scl_classes": ",".join(map(str, invalid_classes))
        if "scl" in raw
        else "maja:CLM|SAT|EDG",
        "resampling_20m": resampling,
    }
    return refl
