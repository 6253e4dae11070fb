"""Sentinel-2 L2A to analysis-ready surface reflectance on the 10 m grid, with per-pixel quality.

One call: :func:`prepare_s2` loads the bands and the mask onto the grid (20 m bands with a
cubic kernel as IOTA² does, masks with nearest neighbour), converts DN to reflectance with the
offset and quantification declared by each date's item (``raster:bands``) or given from the
product metadata (``MTD_MSIL2A.xml``), never from the date, and adds the bit-coded ``quality``
layer and a boolean ``valid`` layer. Everything stays lazy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import cube
from mus_lab.ard._lineage import search_record
from mus_lab.ard._masks import (
    QUALITY_BITS,
    SCL_INVALID_DEFAULT,
    maja_quality,
    scl_quality,
    valid_from_maja,
    valid_from_scl,
)
from mus_lab.ard._options import Chunks, with_overrides
from mus_lab.ard._s2_metadata import S2L2AMetadata
from mus_lab.ard._s2_products import is_product_path, s2_product_items
from mus_lab.contracts import RECIPE_ATTR
from mus_lab.errors import ARDError

__all__ = ["S2_BANDS", "S2_PHYSICAL", "S2Options", "prepare_s2", "reflectance"]

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
    if cube.has_scaling(ds, band):
        scale, offset = cube.scaling(ds, band)
    else:
        nan = xr.full_like(ds.time, np.nan, dtype="float64")
        scale, offset = nan, nan
    missing = np.isnan(scale.values) | np.isnan(offset.values)
    if missing.any() and band in S2_PHYSICAL and "processing_baseline" in ds.coords:
        # No raster:bands (Planetary Computer, Earth Search v0): the baseline decides, as ESA
        # specifies it: BOA_ADD_OFFSET -1000 from 04.00 on, none before; quantification 10000.
        base = xr.DataArray(
            [_baseline_offset(b) for b in ds["processing_baseline"].values],
            dims="time",
            coords={"time": ds.time},
        )
        scale = xr.where(missing, 1e-4, scale)
        offset = xr.where(missing, base, offset)
        missing = np.isnan(scale.values) | np.isnan(offset.values)
    if missing.any():
        ids = ds["item_ids"].values[missing] if "item_ids" in ds.coords else ds.time.values[missing]
        raise ARDError(
            f"Items {list(map(str, ids))} declare neither the scale/offset of {band!r} (STAC "
            "raster:bands) nor s2:processing_baseline: the BOA offset of baseline 04.00+ is not "
            "guessed. Pass metadata=read_l2a_metadata(MTD_MSIL2A.xml), one per date."
        )
    return scale, offset


def _baseline_offset(baseline: Any) -> float:
    """BOA offset (reflectance units) of a processing baseline (``"04.00"``), NaN if unreadable."""
    match = re.fullmatch(r"N?0*(\d+)\.?(\d{2})", str(baseline).strip())
    if match is None:
        return float("nan")
    return -0.1 if (int(match[1]), int(match[2])) >= (4, 0) else 0.0


def _saturated(dn: xr.DataArray) -> xr.DataArray:
    """Where a Sen2Cor DN is saturated (65535); never for signed MAJA reflectance."""
    if dn.dtype.kind == "u" and np.iinfo(dn.dtype).max >= SATURATED_DN:
        return dn == SATURATED_DN
    return xr.zeros_like(dn, dtype=bool)


def reflectance(
    ds: xr.Dataset,
    bands: Iterable[str] = S2_BANDS,
    *,
    metadata: Sequence[S2L2AMetadata] | S2L2AMetadata | None = None,
    nodata: float | None = None,
) -> xr.Dataset:
    """DN to surface reflectance (float32, NaN where DN is nodata or saturated), lazily.

    Parameters
    ----------
    ds : xarray.Dataset
        A Sentinel-2 L2A DN cube (:func:`mus_lab.cube.load`), with ``<band>_scale`` /
        ``<band>_offset`` coordinates unless ``metadata`` is given.
    bands : iterable of str, optional
        Bands to convert (canonical names), default :data:`S2_BANDS`.
    metadata : S2L2AMetadata or sequence of them, optional
        Product metadata (one, or one per date) giving the scale and offset instead.
    nodata : float, optional
        The DN of missing pixels; default each band's ``nodata`` attribute (as the cube
        loader sets it from ``raster:bands``: 0 for Sen2Cor, -10000 for MAJA), else 0.

    Returns
    -------
    xarray.Dataset
        float32 reflectance per band, NaN at ``nodata`` and saturated DN.

    Raises
    ------
    ARDError
        A band is missing, or its scale/offset is unknown for some date (no
        ``raster:bands``, no ``s2:processing_baseline`` and no ``metadata``).

    Examples
    --------
    >>> from mus_lab.ard import S2L2AMetadata, reflectance
    >>> meta = S2L2AMetadata("S2B_...", "Sentinel-2B", "2022-06-01", "04.00", 1e4, {"B04": -1e3})
    >>> dn = xr.Dataset({"red": (("time", "x"), np.array([[0, 2000]], "uint16"))})
    >>> reflectance(dn, ["red"], metadata=meta).red.values.round(4)
    array([[nan, 0.1]], dtype=float32)
    """
    out = {}
    for band in bands:
        if band not in ds:
            raise ARDError(
                f"Band {band!r} is missing from the cube: load it (cube has {sorted(map(str, ds.data_vars))})."
            )
        scale, offset = _scale_offset(ds, band, metadata)
        dn = ds[band]
        fill = nodata if nodata is not None else dn.attrs.get("nodata", 0)
        refl = (dn.astype("float32") * scale + offset).astype("float32")
        out[band] = refl.where((dn != fill) & ~_saturated(dn))
        out[band].attrs = {
            "units": "1",
            "long_name": f"surface reflectance {S2_PHYSICAL.get(band, band)}",
        }
    return xr.Dataset(
        out,
        coords={k: v for k, v in ds.coords.items() if not str(k).endswith(("_scale", "_offset"))},
    )


@dataclass(frozen=True)
class S2Options:
    """Options of :func:`prepare_s2`.

    Parameters
    ----------
    bands : tuple of str
        Reflectance bands (canonical names), default the ten IOTA² bands :data:`S2_BANDS`.
    invalid_classes : tuple of int
        SCL classes treated as invalid (default {0, 1, 3, 8, 9, 10}); ignored for MAJA.
    resampling : str
        Kernel for 20 m bands onto 10 m (``"cubic"``, IOTA²'s choice; ``"bilinear"``...).
    mask_format : {"scl", "maja"} or None
        Which mask the items carry; detected from their assets by default.
    chunks : int, mapping or None
        Dask chunks of the loaded cube, e.g. ``{"time": -1, "x": 512, "y": 512}`` for
        temporal reductions; None: the ``chunk_size`` setting (``MUS_LAB_CHUNK_SIZE``).

    Raises
    ------
    ARDError
        No band, or an unknown mask format.

    Returns
    -------
    S2Options
        The frozen options (``dataclasses.replace`` makes variants).

    Examples
    --------
    >>> from mus_lab.ard import S2Options
    >>> S2Options(bands=["red", "nir"]).bands
    ('red', 'nir')
    """

    bands: tuple[str, ...] = S2_BANDS
    invalid_classes: tuple[int, ...] = tuple(SCL_INVALID_DEFAULT)
    resampling: str = "cubic"
    mask_format: Literal["scl", "maja"] | None = None
    chunks: Chunks = None

    def __post_init__(self) -> None:
        if isinstance(self.bands, str):
            raise ARDError(f"bands={self.bands!r} is one string: pass a tuple, e.g. ('red',).")
        object.__setattr__(self, "bands", tuple(self.bands))
        object.__setattr__(self, "invalid_classes", tuple(int(c) for c in self.invalid_classes))
        if not self.bands:
            raise ARDError(f"bands is empty: pass some of {S2_BANDS}.")
        if self.mask_format not in (None, "scl", "maja"):
            raise ARDError(f"mask_format={self.mask_format!r}: pass 'scl', 'maja' or None.")


def prepare_s2(
    items: Any,
    *,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    metadata: Sequence[S2L2AMetadata] | S2L2AMetadata | None = None,
    options: S2Options | None = None,
    **overrides: Any,
) -> xr.Dataset:
    """Sentinel-2 L2A surface reflectance on the 10 m grid with ``quality`` and ``valid``.

    Parameters
    ----------
    items : SearchResult, sequence of pystac.Item, xarray.Dataset, path or paths
        Sentinel-2 L2A items (a search result, from any provider), an already loaded DN
        cube, or product files: SAFE zips or folders (CDSE) and THEIA MAJA folders, read in
        place (:func:`mus_lab.ard.s2_product_items`).
    geobox : odc.geo.geobox.GeoBox, optional
        Target grid (default: the Sentinel-2 10 m grid of the items or of ``bbox``).
    bbox : sequence of float, optional
        Without ``geobox``: the area whose 10 m grid to use.
    metadata : S2L2AMetadata or sequence of them, optional
        Product metadata (one, or one per date) when the items lack ``raster:bands`` and
        ``s2:processing_baseline``.
    options : S2Options, optional
        Bands, invalid SCL classes, resampling, mask format, chunks (default
        ``S2Options()``).
    **overrides
        Fields of :class:`S2Options` replacing those of ``options``
        (``prepare_s2(items, bands=("red", "nir"))``).

    Returns
    -------
    xarray.Dataset
        Reflectance bands (float32, NaN = no data), ``quality`` (uint8 bits, see
        :data:`mus_lab.ard.QUALITY_BITS`) and ``valid`` (bool), lazy.

    Raises
    ------
    ARDError
        A bad option, a band or the mask is missing, the offset is unknown, or a product
        file is incomplete.

    Examples
    --------
    >>> from mus_lab import catalog
    >>> from mus_lab.ard import prepare_s2
    >>> s2 = catalog.search(tiny.catalog_path, collections="sentinel-2-l2a")
    >>> ds = prepare_s2(s2, bands=("red", "nir"))
    >>> sorted(ds.data_vars), ds.red.dtype
    (['nir', 'quality', 'red', 'valid'], dtype('float32'))
    """
    opts = with_overrides(S2Options, options, overrides, where="prepare_s2")
    bands, resampling, invalid_classes = opts.bands, opts.resampling, opts.invalid_classes
    if is_product_path(items):
        items = s2_product_items(items, bands=bands)
    if isinstance(items, xr.Dataset):
        raw = items
    else:
        from mus_lab.cube._load import _as_items

        item_list = _as_items(items)
        assets = set(item_list[0].assets)
        fmt = opts.mask_format or (
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
            item_list,
            (*bands, *mask_bands),
            geobox=geobox,
            bbox=bbox,
            resampling=rs,
            chunks=opts.chunks,
        )
    refl = reflectance(raw, bands, metadata=metadata)
    any_band_missing = xr.concat([refl[b].isnull() for b in bands], "band").any("band")
    saturated = xr.concat([_saturated(raw[b]) for b in bands], "band").any("band")
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
        RECIPE_ATTR: search_record(items, cube.geobox_of(refl), source_key="optical_source"),
    }
    return refl
