"""The whole flood-risk product from a catalog: search, ARD, flood mapping, risk, products.

1. Sentinel-2 grid (the one reference grid); SAR ARD (Sentinel-1 and/or RCM) on it in dB; HAND
   and slope from the DEM; optical ARD for the optical vote; the land cover of exposure.
2. Per sensor :func:`mus_lab.flood.map_series`, then :func:`mus_lab.flood.assess`.
3. ``flood-extent`` (one item per date) and ``flood-risk`` (a summary item with the zones CSV)
   written as products (:class:`~mus_lab.publish.FloodExtentProduct`,
   :class:`~mus_lab.publish.FloodRiskProduct`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import ard, cube, flood
from mus_lab._settings import resolve_chunks
from mus_lab.contracts import (
    COLLECTIONS,
    FLOOD_EXTENT,
    FLOOD_RISK,
    LANDCOVER_COLLECTIONS,
    PRODUCT_COLLECTIONS,
)
from mus_lab.errors import FloodInputError, PublishError
from mus_lab.flood import MappingOptions, RiskConfig, RiskRun
from mus_lab.publish import FloodExtentProduct, FloodRiskProduct, open_raster
from mus_lab.recipes._search import CatalogLike, find, reference_grid

__all__ = ["LANDCOVER_SEARCH_ORDER", "run_risk"]

#: Land-cover collections tried, in order, when ``landcover`` is not given.
LANDCOVER_SEARCH_ORDER = (
    PRODUCT_COLLECTIONS["fused"],
    LANDCOVER_COLLECTIONS["stacked"],
    LANDCOVER_COLLECTIONS["optical"],
    LANDCOVER_COLLECTIONS["radar"],
)
_LANDCOVER_ASSETS = ("classification", "fused_class", "landcover")


def _raster_on(path: Any, grid: GeoBox, what: str, chunks: int) -> xr.DataArray:
    try:
        arr = open_raster(path, chunks=chunks, what=what)
    except PublishError as exc:
        raise FloodInputError(str(exc)) from exc
    arr = arr.isel(band=0, drop=True) if "band" in arr.dims else arr
    return cube.match_grid(arr, grid, names=(what, "the SAR grid"))


def _landcover(
    landcover: Any, where: CatalogLike, grid: GeoBox, bbox: Any, chunks: int
) -> tuple[xr.DataArray, list[pystac.Item]]:
    if isinstance(landcover, xr.DataArray):
        return cube.match_grid(landcover, grid, names=("land cover", "the SAR grid")), []
    if isinstance(landcover, str | os.PathLike) and Path(landcover).is_file():
        return _raster_on(landcover, grid, "land cover", chunks), []
    candidates = [str(landcover)] if landcover is not None else list(LANDCOVER_SEARCH_ORDER)
    items: list[pystac.Item] = []
    for coll in candidates:
        items = find(where, coll, bbox=bbox, required=False)
        if items:
            break
    if not items:
        raise FloodInputError(
            f"landcover={landcover!r}: no land-cover map found "
            f"({'collections ' + ', '.join(candidates)}). Give landcover= a land-cover collection "
            "id of the catalog (e.g. 'landcover-fused', 'landcover-optical'), a COG path or a "
            "DataArray on the grid; make the maps with notebook 03 / 'mus-lab landcover predict'."
        )
    asset = next((a for a in _LANDCOVER_ASSETS if a in items[0].assets), None)
    if asset is None:
        raise FloodInputError(
            f"The {items[0].collection_id!r} items have no land-cover asset (one of "
            f"{_LANDCOVER_ASSETS}); they offer {sorted(items[0].assets)}."
        )
    size = {"x": chunks, "y": chunks}
    loaded = cube.load(items[-1:], (asset,), geobox=grid, resampling="nearest", chunks=size)
    return loaded[asset].isel(time=0, drop=True).astype(np.uint8), items[-1:]


def _terrain(
    dem: Any, where: CatalogLike, grid: GeoBox, bbox: Any
) -> tuple[xr.DataArray | None, xr.DataArray | None, list[pystac.Item]]:
    if dem is None:
        return None, None, []
    items: list[pystac.Item] = []
    source: Any = dem
    if not isinstance(dem, xr.DataArray) and not Path(str(dem)).is_file():
        items = find(where, str(dem), bbox=bbox, required=False)
        if not items:
            return None, None, []
        asset = "dem" if "dem" in items[0].assets else next(iter(items[0].assets))
        source = items[0].assets[asset].get_absolute_href() or items[0].assets[asset].href
    hand, slope = flood.terrain_from_dem(source, grid)
    return hand, slope, items


def run_risk(
    catalog: CatalogLike,
    *,
    landcover: Any = None,
    zones: Any = None,
    zone_field: str | None = None,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    sensors: Sequence[str] = ("s1", "rcm"),
    collections: Mapping[str, str] | None = None,
    dem: Any = COLLECTIONS["dem"],
    optical: str | None = COLLECTIONS["s2"],
    population: xr.DataArray | str | os.PathLike[str] | None = None,
    options: MappingOptions | None = None,
    config: RiskConfig | str | os.PathLike[str] | None = None,
    rule: Any = None,
    speckle: str | None = "refined_lee",
    chunks: int | None = None,
    extent_collection: str | None = PRODUCT_COLLECTIONS["flood-extent"],
    risk_collection: str | None = PRODUCT_COLLECTIONS["flood-risk"],
    overwrite: bool = False,
    workdir: str | os.PathLike[str] | None = None,
) -> RiskRun:
    """Flood extent, time-series products and flood risk of an area, from a catalog.

    Parameters
    ----------
    catalog
        Local STAC catalog (folder or ``catalog.json``), STAC API URL, or items already found.
    landcover
        Exposure classes on the grid: a collection id (``"landcover-fused"``,
        ``"landcover-optical"``, ``"landcover-truth"``...), a COG path or a DataArray. Default:
        the first of :data:`LANDCOVER_SEARCH_ORDER` the catalog holds.
    zones, zone_field
        Vector file (or GeoDataFrame) of zones for the table; optional.
    bbox, datetime
        Area (lon/lat) and period of the search.
    sensors
        SAR sensors to map: ``"s1"`` and/or ``"rcm"``.
    collections
        Collection ids per sensor when not :data:`mus_lab.flood.SENSOR_COLLECTIONS`.
    dem
        DEM collection id (default ``"dem"``; skipped when absent), a file, a DataArray
        or None: HAND and slope for the exclusion mask and the tiles.
    optical
        Sentinel-2 L2A collection for the optical vote (None: SAR only).
    population
        People (or asset value) per pixel on the grid: a COG path or DataArray.
    options
        :class:`~mus_lab.flood.MappingOptions`.
    config
        :class:`~mus_lab.flood.RiskConfig`, or a YAML path overriding the packaged defaults.
    rule
        Vote rule of the consensus (default: majority).
    speckle
        Speckle filter of the SAR ARD (default refined Lee 7 x 7).
    chunks
        Spatial chunk size (default: the setting).
    extent_collection, risk_collection
        Collections to write into the catalog (None: do not write that one).
    overwrite
        Replace existing collections.
    workdir
        Folder for staged intermediate layers (default: a new temporary folder; see
        :meth:`~mus_lab.flood.RiskRun.cleanup`).

    Returns
    -------
    mus_lab.flood.RiskRun

    Raises
    ------
    FloodInputError
        No SAR item, an unusable land cover or zones, or a collection that exists.
    GridMismatchError
        A land cover or population raster not on the grid.
    NoBimodalTileError
        No SAR date has a bimodal tile.

    Examples
    --------
    >>> run = run_risk(tiny.catalog_path, landcover="landcover-truth", sensors=("s1",),
    ...                optical=None, extent_collection=None, risk_collection=None)
    >>> sorted(run.summary.data_vars)[:3]
    ['exclusion', 'exposure', 'frequency']
    """
    opts = options or MappingOptions()
    cfg = config if isinstance(config, RiskConfig) else RiskConfig.load(config)
    size = resolve_chunks(chunks)
    ids = {**flood.SENSOR_COLLECTIONS, **dict(collections or {})}
    unknown = [s for s in sensors if s not in ids]
    if unknown or not sensors:
        raise FloodInputError(f"sensors={tuple(sensors)!r}: choose among {tuple(ids)}.")
    if isinstance(catalog, str | os.PathLike):
        root = Path(catalog)
        for coll_id in (extent_collection, risk_collection):
            target = (root if root.is_dir() else root.parent) / str(coll_id)
            if coll_id and target.exists() and not overwrite:
                raise FloodInputError(
                    f"Collection {coll_id!r} already exists in {target.parent}: pass "
                    "overwrite=True or another collection id. Nothing was computed or written."
                )
    s2_items = (
        find(catalog, optical, bbox=bbox, datetime=datetime, required=False) if optical else []
    )
    sar_items = {
        s: find(catalog, ids[s], bbox=bbox, datetime=datetime, required=False) for s in sensors
    }
    every_sar = [it for items in sar_items.values() for it in items]
    if not every_sar:
        raise FloodInputError(
            f"No SAR item of {[ids[s] for s in sensors]} in the catalog for bbox={bbox}, "
            f"datetime={datetime}: widen the search or add Sentinel-1/RCM items."
        )
    grid = reference_grid(s2_items or every_sar, bbox=bbox)
    lc, lc_items = _landcover(landcover, catalog, grid, bbox, size)
    hand, slope, dem_items = _terrain(dem, catalog, grid, bbox)
    spatial = {"time": 1, "x": size, "y": size}
    s2 = None
    if s2_items:
        s2 = ard.prepare_s2(s2_items, bands=("green", "nir", "swir16"), geobox=grid, chunks=spatial)
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mus_lab_flood_"))
    vote = rule if rule is not None else flood.majority_rule
    series = []
    for sensor, items in sar_items.items():
        if not items:
            continue
        if sensor == "rcm":
            sar = ard.prepare_rcm(items, geobox=grid, speckle=speckle, db=True, chunks=size)  # type: ignore[arg-type]
        else:
            sar = ard.prepare_s1(items, geobox=grid, speckle=speckle, db=True, chunks=spatial)  # type: ignore[arg-type]
        series.append(
            flood.map_series(
                sar,
                hand=hand,
                slope=slope,
                optical=s2,
                options=opts,
                rule=vote,
                folder=work / sensor,
            )
        )
    pop = None
    if population is not None:
        pop = (
            population
            if isinstance(population, xr.DataArray)
            else _raster_on(population, grid, "population", size)
        )
        if isinstance(population, xr.DataArray):
            pop = cube.match_grid(pop, grid, names=("population", "the SAR grid"))
        nodata = pop.attrs.get("nodata")
        if nodata is not None:
            pop = pop.where(pop != nodata)
    run = flood.assess(
        series,
        lc,
        hand=hand,
        slope=slope,
        population=pop,
        zones=zones,
        zone_field=zone_field,
        options=opts,
        config=cfg,
        workdir=work,
    )
    sources = tuple(every_sar + dem_items + lc_items)
    params = {"mapping": opts.to_parameters(), "risk": cfg.to_parameters(), "speckle": str(speckle)}
    products = {
        extent_collection: FloodExtentProduct(run.extent[list(FLOOD_EXTENT.names)]),
        risk_collection: FloodRiskProduct(
            run.summary[list(FLOOD_RISK.names)], zones=run.zones, class_names=cfg.class_names
        ),
    }
    for coll, product in products.items():
        if coll:
            made = replace(product, collection=coll, sources=sources, parameters=params)
            run.collections[coll] = made.write(catalog, overwrite=overwrite)  # type: ignore[arg-type]
    return run
