"""Flood series and risk from prepared inputs: SAR ARD series (+ optical, terrain, land cover)
-> flood extent per date -> time-series products -> risk -> per-zone table.

Order of work, so that memory holds chunks and no step is recomputed per date:

1. Per sensor (:func:`map_series`): thresholds of every date (one tile pass), per-orbit
   references (staged once per orbit), then the water maps staged date by date.
2. :func:`assess`: the sensors' series combined; reference water, exclusion, flood extent,
   summary, risk and the zone table.

Searching a catalog and writing the products is the recipe's job
(:func:`mus_lab.recipes.run_risk`); this module only takes data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab.contracts import COLLECTIONS
from mus_lab.cube import match_grid
from mus_lab.errors import FloodInputError
from mus_lab.flood._consensus import VoteRule
from mus_lab.flood._evidence import orbit_references, sar_evidence, self_trained_models
from mus_lab.flood._grid import keep_grid
from mus_lab.flood._io import stage
from mus_lab.flood._mapping import FloodMaps, map_flood, map_water
from mus_lab.flood._options import MappingOptions
from mus_lab.flood._products import combine_series
from mus_lab.flood._risk import RiskConfig, risk
from mus_lab.flood._terrain import terrain_from_dem
from mus_lab.flood._zones import zone_table

__all__ = ["SENSOR_COLLECTIONS", "RiskRun", "assess", "map_series", "terrain_from_dem"]

#: Default collection of each SAR sensor.
SENSOR_COLLECTIONS = {"s1": COLLECTIONS["s1"], "rcm": COLLECTIONS["rcm"]}


@dataclass
class RiskRun:
    """What :func:`assess` (and :func:`mus_lab.recipes.run_risk`) made.

    Attributes
    ----------
    extent, summary
        Lazy datasets: per-date ``water``/``flood``/``likelihood``, and the ``flood-risk``
        layers (time-series products, hazard, exposure, vulnerability, risk, classes).
    zones
        The per-zone table (None without zones).
    water
        The combined water maps with the evidence of every source (for scoring).
    maps
        The :class:`FloodMaps` the products come from (summary without the risk layers).
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
        """The flood map each evidence source alone gives: ``maps.by_source()``.

        Returns
        -------
        xarray.DataArray
            uint8 ``(source, time, y, x)``, see :meth:`FloodMaps.by_source`.
        """
        return self.maps.by_source()

    def cleanup(self) -> None:
        """Remove the staged intermediate layers (the lazy datasets stop working)."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _coords(grid: GeoBox) -> dict[str, Any]:
    from odc.geo.xr import xr_coords

    return {str(k): v for k, v in xr_coords(grid).items()}


def _grid_array(grid: GeoBox) -> xr.DataArray:
    from odc.geo.xr import xr_zeros

    return xr_zeros(grid, dtype="uint8")


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


def map_series(
    sar: xr.Dataset,
    *,
    hand: xr.DataArray | None,
    slope: xr.DataArray | None,
    optical: xr.Dataset | None,
    options: MappingOptions,
    rule: VoteRule,
    folder: Path,
) -> xr.Dataset:
    """Water maps of one sensor's SAR series, staged date by date.

    Parameters
    ----------
    sar
        SAR ARD in dB on the target grid (``prepare_s1``/``prepare_rcm`` with ``db=True``).
    hand, slope
        Terrain on the grid (:func:`terrain_from_dem`), or None.
    optical
        Sentinel-2 ARD for the optical vote (``green``, ``nir``, ``swir16``), or None.
    options
        :class:`MappingOptions`.
    rule
        Combination rule of the consensus.
    folder
        Where large intermediates are staged.

    Returns
    -------
    xarray.Dataset
        ``water``, ``likelihood``, ``evidence`` (and ``invalid``) per date, plus ``threshold``.

    Raises
    ------
    NoBimodalTileError
        No date has a bimodal tile.
    """
    sar = _keep(sar, folder / "sar")  # read and speckle-filtered once, used twice
    thresholds = sar_evidence(sar, hand=hand, options=options)["threshold"].compute()
    reference = None
    if "change" in options.methods:
        orbit = sar["relative_orbit"].values if "relative_orbit" in sar.coords else None
        reference = _stage_references(orbit_references(sar, options=options), orbit, folder / "ref")
    models = None
    if "self_trained" in options.methods:  # fitted once (a capped sample per block)
        models = self_trained_models(
            sar,
            reference=reference,
            hand=hand,
            slope=slope,
            thresholds=thresholds,
            options=options,
        ).compute()
    water = map_water(
        sar,
        reference=reference,
        hand=hand,
        slope=slope,
        optical=optical,
        thresholds=thresholds,
        options=options,
        rule=rule,
        self_trained=models,
    )
    keep = ["water", "likelihood", "evidence"] + (["invalid"] if "invalid" in water else [])
    staged = _keep(water[keep], folder / "water")
    staged["threshold"] = thresholds
    return staged


def assess(
    series: Sequence[xr.Dataset],
    landcover: xr.DataArray,
    *,
    hand: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    population: xr.DataArray | None = None,
    zones: Any = None,
    zone_field: str | None = None,
    options: MappingOptions | None = None,
    config: RiskConfig | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> RiskRun:
    """Flood extent per date, time-series products, risk and zone table from mapped series.

    Parameters
    ----------
    series
        One :func:`map_series` result per SAR sensor, on one grid.
    landcover
        Exposure classes on the grid (uint8 codes).
    hand, slope
        Terrain on the grid, or None.
    population
        People (or asset value) per pixel on the grid, or None.
    zones, zone_field
        Vector file or GeoDataFrame of zones for the table (optional), and its name field.
    options
        :class:`MappingOptions`.
    config
        :class:`RiskConfig` (default: the packaged one).
    workdir
        Folder for staged intermediate layers (default: a new temporary folder).

    Returns
    -------
    RiskRun

    Raises
    ------
    FloodInputError
        No series, or unusable zones.
    GridMismatchError
        The land cover or the population is not on the series' grid.
    """
    if not series:
        raise FloodInputError("assess needs at least one mapped SAR series (map_series).")
    opts = options or MappingOptions()
    cfg = config or RiskConfig.load(None)
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mus_lab_flood_"))
    water = combine_series(*series) if len(series) > 1 else series[0]
    landcover = match_grid(landcover, water, names=("land cover", "the SAR series"))
    water = keep_grid(water, landcover)
    independent = landcover.isin(list(cfg.water_classes)) if cfg.water_classes else None
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
    if population is not None:
        population = match_grid(population, landcover, names=("population", "the land cover"))
    rk = risk(maps.summary, landcover, population=population, config=cfg)
    summary = maps.summary.assign(
        {v: rk[v] for v in ("exposure", "vulnerability", "risk", "risk_class")}
    )
    table = None
    if zones is not None:
        table = zone_table(summary, rk, landcover, zones, zone_field=zone_field, config=cfg)
    return RiskRun(
        extent=maps.extent, summary=summary, zones=table, water=water, maps=maps, workdir=work
    )
