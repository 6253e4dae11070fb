"""The whole flood-risk product from a catalog: SAR (+ optical, DEM) -> flood extent per
date -> time-series products -> risk -> per-zone table, written as COGs + STAC items.

Order of work, so that memory holds chunks and no step is recomputed per date:

1. Sentinel-2 grid; SAR ARD (Sentinel-1 and/or RCM) on it in dB; HAND and slope from the
   DEM (pyflwdir, then reprojected); optical ARD for the optical vote.
2. Per sensor: thresholds of every date (one tile pass), per-orbit references (staged
   once per orbit), then the water maps staged date by date.
3. The sensors' series combined; reference water, exclusion, flood extent, summary,
   risk and the zone table; ``flood-extent`` (one item per date) and ``flood-risk`` (a
   summary item with the zones CSV) written atomically into the catalog.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import ard, cube
from mus_lab import catalog as cat
from mus_lab.cube import check_same_grid
from mus_lab.errors import CatalogError, FloodInputError
from mus_lab.flood._consensus import VoteRule, majority_rule
from mus_lab.flood._evidence import orbit_references, sar_evidence
from mus_lab.flood._grid import keep_grid
from mus_lab.flood._io import open_raster, stage
from mus_lab.flood._mapping import FloodMaps, map_flood, map_water, source_floods
from mus_lab.flood._options import MappingOptions
from mus_lab.flood._products import combine_series
from mus_lab.flood._risk import RiskConfig, risk
from mus_lab.flood._terrain import hand_from_dem, slope_from_dem, terrain_on_grid
from mus_lab.flood._zones import zone_table

__all__ = ["SENSOR_COLLECTIONS", "RiskRun", "run_risk"]

#: Default collection of each SAR sensor.
SENSOR_COLLECTIONS = {"s1": "sentinel-1-grd", "rcm": "rcm-grd"}
_LANDCOVER_ASSETS = ("classification", "fused_class", "landcover")
EXTENT_VARS = ("water", "flood", "likelihood")
RISK_VARS = (
    "max_extent",
    "frequency",
    "n_valid",
    "reference_water",
    "exclusion",
    "hazard",
    "risk",
    "risk_class",
    "max_extent_low",
    "max_extent_high",
)


@dataclass
class RiskRun:
    """What :func:`run_risk` made.

    Attributes
    ----------
    extent, summary
        Lazy datasets: per-date ``water``/``flood``/``likelihood``, and the ``flood-risk``
        layers (time-series products, hazard, exposure, vulnerability, risk, classes).
    zones
        The per-zone table (None without zones).
    water
        The combined water maps with the evidence of every source (for scoring).
    collections
        Written collections by id.
    workdir
        Staged intermediate layers the lazy datasets read; :meth:`cleanup` removes it.
    """

    extent: xr.Dataset
    summary: xr.Dataset
    zones: pd.DataFrame | None
    water: xr.Dataset
    maps: FloodMaps
    collections: dict[str, pystac.Collection] = field(default_factory=dict)
    workdir: Path | None = None

    def by_source(self) -> xr.DataArray:
        """The flood map each evidence source alone gives (:func:`source_floods`)."""
        return source_floods(self.water, self.summary["reference_water"], self.summary["exclusion"])

    def cleanup(self) -> None:
        """Remove the staged intermediate layers (the lazy datasets stop working)."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _search(catalog: Any, collection: str, bbox: Any, datetime: str | None) -> list[pystac.Item]:
    try:
        return list(cat.search(catalog, collections=collection, bbox=bbox, datetime=datetime))
    except CatalogError:
        return []


def _coords(grid: GeoBox) -> dict[str, Any]:
    from odc.geo.xr import xr_coords

    return {str(k): v for k, v in xr_coords(grid).items()}


def _grid_array(grid: GeoBox) -> xr.DataArray:
    from odc.geo.xr import xr_zeros

    return xr_zeros(grid, dtype="uint8")


def _landcover(
    landcover: Any, catalog: Any, grid: GeoBox, bbox: Any, chunks: int
) -> tuple[xr.DataArray, list[pystac.Item]]:
    if isinstance(landcover, xr.DataArray):
        check_same_grid(_grid_array(grid), landcover, names=["the SAR grid", "land cover"])
        return landcover, []
    if isinstance(landcover, str | os.PathLike) and Path(landcover).is_file():
        arr = open_raster(landcover, chunks=chunks, what="land cover").isel(band=0, drop=True)
        check_same_grid(_grid_array(grid), arr, names=["the SAR grid", "land cover"])
        return arr.assign_coords(_coords(grid)), []
    items = _search(catalog, str(landcover), bbox, None)
    if not items:
        raise FloodInputError(
            f"landcover={landcover!r} is neither a raster file nor a collection with items in "
            f"the catalog: give a land-cover COG, a DataArray or a collection id "
            "(e.g. 'landcover-truth', 'landcover-optical')."
        )
    asset = next((a for a in _LANDCOVER_ASSETS if a in items[0].assets), None)
    if asset is None:
        raise FloodInputError(
            f"The {landcover!r} items have no land-cover asset (one of {_LANDCOVER_ASSETS}); "
            f"they offer {sorted(items[0].assets)}."
        )
    loaded = cube.load(items[-1:], (asset,), geobox=grid, resampling="nearest", chunks=chunks)
    return loaded[asset].isel(time=0, drop=True).astype(np.uint8), items[-1:]


def _terrain(
    dem: Any, catalog: Any, grid: GeoBox, bbox: Any
) -> tuple[xr.DataArray | None, xr.DataArray | None, list[pystac.Item]]:
    if dem is None:
        return None, None, []
    items: list[pystac.Item] = []
    if isinstance(dem, xr.DataArray):
        arr = dem
    elif Path(str(dem)).is_file():
        arr = open_raster(dem, what="DEM").isel(band=0, drop=True)
    else:
        items = _search(catalog, str(dem), bbox, None)
        if not items:
            return None, None, []
        asset = "dem" if "dem" in items[0].assets else next(iter(items[0].assets))
        href = items[0].assets[asset].get_absolute_href() or items[0].assets[asset].href
        arr = open_raster(href, what="DEM").isel(band=0, drop=True)
    arr = arr.compute()
    hand = terrain_on_grid(hand_from_dem(arr), grid)
    slope = terrain_on_grid(slope_from_dem(arr), grid)
    return hand, slope, items


#: Intermediate layers smaller than this stay in memory (persisted) instead of being
#: staged on disk: small areas then skip dozens of file round trips.
IN_MEMORY_BYTES = 256 * 2**20


def _keep(ds: xr.Dataset, folder: Path) -> xr.Dataset:
    """Persist small intermediates in memory, stage large ones on disk (see :func:`stage`)."""
    size = sum(v.size * 4 for v in ds.data_vars.values())
    if size > IN_MEMORY_BYTES:
        return stage(ds, folder)
    try:
        chunks: dict[Any, Any] = dict(ds.chunksizes)
    except ValueError:  # variables chunked differently
        chunks = {"time": 1} if "time" in ds.dims else {}
    # Computed and re-wrapped rather than persisted: later graphs then start from plain
    # arrays (mixing several persisted graphs in one compute trips dask's graph checks).
    return ds.compute().chunk(chunks)


def _stage_references(refs: xr.Dataset, orbit: np.ndarray | None, folder: Path) -> xr.Dataset:
    """Compute each orbit's reference once and rebuild the per-date references from it."""
    groups = np.zeros(refs.sizes["time"], int) if orbit is None else np.asarray(orbit)
    firsts = {g: int(np.flatnonzero(groups == g)[0]) for g in pd.unique(groups)}
    staged = _keep(refs.isel(time=list(firsts.values())), folder)
    parts = [
        staged.isel(time=list(firsts).index(g)).expand_dims(time=[t])
        for g, t in zip(groups, refs["time"].values, strict=True)
    ]
    return keep_grid(xr.concat(parts, "time"), refs)


def _map_sensor(
    sar: xr.Dataset,
    *,
    hand: xr.DataArray | None,
    slope: xr.DataArray | None,
    optical: xr.Dataset | None,
    options: MappingOptions,
    rule: VoteRule,
    folder: Path,
) -> xr.Dataset:
    sar = _keep(sar, folder / "sar")  # read and speckle-filtered once, used twice
    thresholds = sar_evidence(sar, hand=hand, options=options)["threshold"].compute()
    reference = None
    if "change" in options.methods:
        orbit = sar["relative_orbit"].values if "relative_orbit" in sar.coords else None
        reference = _stage_references(orbit_references(sar, options=options), orbit, folder / "ref")
    water = map_water(
        sar,
        reference=reference,
        hand=hand,
        slope=slope,
        optical=optical,
        thresholds=thresholds,
        options=options,
        rule=rule,
    )
    keep = ["water", "likelihood", "evidence"] + (["invalid"] if "invalid" in water else [])
    staged = _keep(water[keep], folder / "water")
    staged["threshold"] = thresholds
    return staged


def run_risk(
    catalog: str | os.PathLike[str],
    *,
    landcover: Any = "landcover-truth",
    zones: Any = None,
    zone_field: str | None = None,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    sensors: Sequence[str] = ("s1", "rcm"),
    collections: Mapping[str, str] | None = None,
    dem: Any = "dem",
    optical: str | None = "sentinel-2-l2a",
    population: xr.DataArray | str | os.PathLike[str] | None = None,
    options: MappingOptions | None = None,
    config: RiskConfig | str | os.PathLike[str] | None = None,
    rule: VoteRule = majority_rule,
    speckle: str | None = "refined_lee",
    chunks: int = 2048,
    extent_collection: str | None = "flood-extent",
    risk_collection: str | None = "flood-risk",
    overwrite: bool = False,
    workdir: str | os.PathLike[str] | None = None,
) -> RiskRun:
    """Flood extent, time-series products and flood risk of an area, from a catalog.

    Parameters
    ----------
    catalog
        Local STAC catalog (folder or ``catalog.json``), e.g. the sample scenario's.
    landcover
        Exposure classes on the grid: a collection id (``"landcover-truth"``, a
        land-cover product such as ``"landcover-optical"``), a COG path or a DataArray.
    zones, zone_field
        Vector file (or GeoDataFrame) of zones for the table; optional.
    bbox, datetime
        Area (lon/lat) and period of the search.
    sensors
        SAR sensors to map: ``"s1"`` and/or ``"rcm"``.
    collections
        Collection ids per sensor when not :data:`SENSOR_COLLECTIONS`.
    dem
        DEM collection id (default ``"dem"``; skipped when absent), a file, a DataArray
        or None: HAND and slope for the exclusion mask and the tiles.
    optical
        Sentinel-2 L2A collection for the optical vote (None: SAR only).
    population
        People (or asset value) per pixel on the grid: a COG path or DataArray.
    options
        :class:`MappingOptions`.
    config
        :class:`RiskConfig`, or a YAML path overriding the packaged defaults.
    rule
        Combination rule of the consensus.
    speckle
        Speckle filter of the SAR ARD (default refined Lee 7 x 7).
    chunks
        Spatial chunk size.
    extent_collection, risk_collection
        Collections to write into the catalog (None: do not write that one).
    overwrite
        Replace existing collections.
    workdir
        Folder for staged intermediate layers (default: a new temporary folder; see
        :meth:`RiskRun.cleanup`).

    Returns
    -------
    RiskRun

    Raises
    ------
    FloodInputError
        No SAR item, an unusable land cover or zones.
    GridMismatchError
        A land cover or population raster not on the grid.
    NoBimodalTileError
        No SAR date has a bimodal tile.
    ARDError
        A collection exists and ``overwrite`` is False (nothing written).

    Example
    -------
    >>> run = run_risk(sc.catalog_path, zones="zones.gpkg")  # doctest: +SKIP
    >>> run.zones.head()  # doctest: +SKIP
    """
    opts = options or MappingOptions()
    cfg = config if isinstance(config, RiskConfig) else RiskConfig.load(config)
    ids = {**SENSOR_COLLECTIONS, **dict(collections or {})}
    unknown = [s for s in sensors if s not in ids]
    if unknown or not sensors:
        raise FloodInputError(f"sensors={tuple(sensors)!r}: choose among {tuple(ids)}.")
    root = Path(catalog)
    for coll_id in (extent_collection, risk_collection):
        target = (root if root.is_dir() else root.parent) / str(coll_id)
        if coll_id and target.exists() and not overwrite:
            raise FloodInputError(
                f"Collection {coll_id!r} already exists in {target.parent}: pass overwrite=True "
                "or another collection id. Nothing was computed or written."
            )
    s2_items = _search(catalog, optical, bbox, datetime) if optical else []
    sar_items = {s: _search(catalog, ids[s], bbox, datetime) for s in sensors}
    every_sar = [it for items in sar_items.values() for it in items]
    if not every_sar:
        raise FloodInputError(
            f"No SAR item of {[ids[s] for s in sensors]} in the catalog for bbox={bbox}, "
            f"datetime={datetime}: widen the search or add Sentinel-1/RCM items."
        )
    grid = cube.reference_geobox(s2_items or every_sar, bbox=bbox)
    lc, lc_items = _landcover(landcover, catalog, grid, bbox, chunks)
    hand, slope, dem_items = _terrain(dem, catalog, grid, bbox)
    s2 = None
    if s2_items:
        s2 = ard.prepare_s2(
            s2_items,
            bands=("green", "nir", "swir16"),
            geobox=grid,
            chunks={"time": 1, "x": chunks, "y": chunks},
        )
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mus_lab_flood_"))
    series = []
    for sensor, items in sar_items.items():
        if not items:
            continue
        if sensor == "rcm":
            sar = ard.prepare_rcm(items, geobox=grid, speckle=speckle, db=True, chunks=chunks)  # type: ignore[arg-type]
        else:
            sar = ard.prepare_s1(
                items,
                geobox=grid,
                speckle=speckle,  # type: ignore[arg-type]
                db=True,
                chunks={"time": 1, "x": chunks, "y": chunks},
            )
        series.append(
            _map_sensor(
                sar,
                hand=hand,
                slope=slope,
                optical=s2,
                options=opts,
                rule=rule,
                folder=work / sensor,
            )
        )
    water = combine_series(*series) if len(series) > 1 else series[0]
    water = keep_grid(water, _grid_array(grid))
    independent = lc.isin(list(cfg.water_classes)) if cfg.water_classes else None
    optical_ev = (
        water["evidence"].sel(source="optical", drop=True)
        if "optical" in water["evidence"]["source"].values
        else None
    )
    maps = map_flood(
        water,
        hand=hand,
        slope=slope,
        independent_water=independent,
        optical=optical_ev,
        options=opts,
        likelihood_bounds=cfg.likelihood_bounds,
    )
    maps = FloodMaps(
        extent=_keep(maps.extent, work / "extent"),
        summary=_keep(maps.summary, work / "summary"),
        water=water,
    )
    pop = None
    if population is not None:
        pop = _population(population, grid, chunks)
    rk = risk(maps.summary, lc, population=pop, config=cfg)
    summary = maps.summary.assign(
        {v: rk[v] for v in ("exposure", "vulnerability", "risk", "risk_class")}
    )
    table = None
    if zones is not None:
        table = zone_table(summary, rk, lc, zones, zone_field=zone_field, config=cfg)
    run = RiskRun(
        extent=maps.extent,
        summary=summary,
        zones=table,
        water=water,
        maps=maps,
        workdir=work,
    )
    sources = every_sar + dem_items + lc_items
    params = {"mapping": opts.to_parameters(), "risk": cfg.to_parameters(), "speckle": str(speckle)}
    if extent_collection:
        run.collections[extent_collection] = ard.write(
            maps.extent[list(EXTENT_VARS)],
            catalog,
            extent_collection,
            sources=sources,
            parameters=params,
            description="Flood extent per SAR date (mus_lab.flood): water, flood (water minus "
            "reference water) and likelihood (0-100) of the consensus of SAR methods.",
            overwrite=overwrite,
            level="L3-flood",
            asset_fields=_extent_fields(),
            extensions=(_CLASSIFICATION,),
        )
    if risk_collection:
        files = {}
        if table is not None:
            csv = work / "zones.csv"
            table.to_csv(csv, index=False)
            files["zones"] = csv
        run.collections[risk_collection] = ard.write(
            summary[list(RISK_VARS)],
            catalog,
            risk_collection,
            sources=sources,
            parameters=params,
            description="Flood time-series products and flood risk (mus_lab.flood): maximum "
            "extent, frequency, valid observations, reference water, exclusion, hazard, risk "
            "and risk classes, with a per-zone table.",
            overwrite=overwrite,
            level="L4-flood-risk",
            asset_fields=_risk_fields(cfg),
            extensions=(_CLASSIFICATION,),
            files=files,
        )
    return run


_CLASSIFICATION = "https://stac-extensions.github.io/classification/v2.0.0/schema.json"


def _classes(pairs: Sequence[tuple[int, str]]) -> dict[str, Any]:
    return {"classification:classes": [{"value": v, "name": n} for v, n in pairs]}


def _extent_fields() -> dict[str, Any]:
    binary = _classes([(0, "not-water"), (1, "water"), (255, "no-data")])
    return {"water": binary, "flood": _classes([(0, "not-flood"), (1, "flood"), (255, "no-data")])}


def _risk_fields(cfg: RiskConfig) -> dict[str, Any]:
    names = [(i + 1, n.replace(" ", "-")) for i, n in enumerate(cfg.class_names)]
    extent = _classes([(0, "never-flooded"), (1, "flooded"), (255, "no-data")])
    return {
        "risk_class": _classes([(0, "no-data"), *names]),
        "max_extent": extent,
        "max_extent_low": extent,
        "max_extent_high": extent,
        "reference_water": _classes([(0, "not-water"), (1, "reference-water")]),
    }


def _population(population: Any, grid: GeoBox, chunks: int) -> xr.DataArray:
    if isinstance(population, xr.DataArray):
        check_same_grid(_grid_array(grid), population, names=["the SAR grid", "population"])
        return population
    arr = open_raster(population, chunks=chunks, what="population").isel(band=0, drop=True)
    check_same_grid(_grid_array(grid), arr, names=["the SAR grid", "population"])
    nodata = arr.attrs.get("nodata")
    if nodata is not None:
        arr = arr.where(arr != nodata)
    return arr.assign_coords(_coords(grid))
