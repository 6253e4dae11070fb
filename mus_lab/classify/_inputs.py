"""Feature cubes straight from a catalog, per sensor set, and region maps for regional models.

:func:`features_from_catalog` is the recipe a model records: the same call with the same
arguments rebuilds the features it was trained on (the CLI's ``predict`` does exactly that).
Sensor sets: ``"optical"`` (Sentinel-2 gap-filled series, IOTA²'s features), ``"radar"``
(Sentinel-1 and, when the catalog has it, RCM period means) and ``"stacked"`` (both, on the
optical date grid).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from mus_lab import ard, cube
from mus_lab import catalog as cat
from mus_lab.classify._features import (
    IOTA2_OPTICAL,
    feature_cube,
    optical_features,
    radar_features,
    stack_features,
)
from mus_lab.classify._samples import PolygonsLike, read_polygons
from mus_lab.errors import FeatureMismatchError, MusLabError, SamplesError

__all__ = ["SENSOR_SETS", "features_from_catalog", "region_map"]

SensorSet = Literal["optical", "radar", "stacked"]
SENSOR_SETS: tuple[str, ...] = ("optical", "radar", "stacked")


def features_from_catalog(
    catalog: str | os.PathLike[str],
    sensors: SensorSet = "optical",
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    every_days: int = 10,
    optical_variables: Sequence[str] | None = None,
    speckle: Literal["lee", "refined_lee", "lee_sigma"] | None = "refined_lee",
    radar_sources: Sequence[str] = ("sentinel-1-grd", "rcm-grd"),
    optical_source: str = "sentinel-2-l2a",
    chunks: Mapping[str, int] | None = None,
) -> tuple[xr.DataArray, dict[str, Any], list[Any]]:
    """Search a catalog and build the feature cube of a sensor set, lazily.

    Parameters
    ----------
    catalog
        Local catalog or STAC API with ``sentinel-2-l2a`` and/or ``sentinel-1-grd``/``rcm-grd``.
    sensors
        ``"optical"``, ``"radar"`` or ``"stacked"``.
    bbox, datetime
        Area (lon/lat) and interval.
    every_days
        Date grid spacing (optical gap-filling and radar periods).
    optical_variables
        Optical variables (default IOTA²'s: ten bands, NDVI, NDWI, brightness).
    speckle
        Speckle filter for radar (``None`` for none).
    radar_sources
        Radar collections to use when present (prefixes ``s1``, ``rcm``).
    optical_source
        Sentinel-2 L2A collection of the optical and stacked sets (also the reference grid).
    chunks
        Spatial chunks (default 512 x 512).

    Returns
    -------
    (features, recipe, sources)
        The ``(feature, y, x)`` cube, the recipe (these arguments, JSON-friendly) and the
        source items used.

    Raises
    ------
    FeatureMismatchError
        Unknown sensor set, or no radar collection found.
    EmptySearchError
        No Sentinel-2 item for an optical or stacked set.
    """
    if sensors not in SENSOR_SETS:
        raise FeatureMismatchError(f"sensors must be one of {SENSOR_SETS}, got {sensors!r}.")
    size = dict(chunks or {"x": 512, "y": 512})
    recipe: dict[str, Any] = {
        "sensors": sensors,
        "bbox": list(bbox) if bbox else None,
        "datetime": datetime,
        "every_days": every_days,
        "optical_variables": list(optical_variables or IOTA2_OPTICAL),
        "speckle": speckle,
        "radar_sources": list(radar_sources),
        "optical_source": optical_source,
    }
    where = os.fspath(catalog)
    sources: list[Any] = []
    parts: list[xr.Dataset] = []
    labels: list[str] = []
    grid = None
    dates = None
    if sensors in ("optical", "stacked"):
        items = cat.search(where, collections=optical_source, bbox=bbox, datetime=datetime)
        s2 = ard.prepare_s2(items, bbox=bbox, chunks={"time": -1, **size})
        ts = ard.s2_time_series(s2, every_days=every_days)
        opt = optical_features(ts, optical_variables)
        grid, dates = cube.geobox_of(s2), opt["time"].values
        parts.append(opt)
        labels.append("optical")
        sources += list(items)
    if sensors in ("radar", "stacked"):
        found = []
        for coll in radar_sources:
            try:
                items = cat.search(where, collections=coll, bbox=bbox, datetime=datetime)
            except MusLabError:  # collection absent or empty here: use the others
                continue
            found.append((coll, items))
        if not found:
            raise FeatureMismatchError(
                f"No radar items in {list(radar_sources)} for this area and interval: check the "
                "catalog or use sensors='optical'."
            )
        if grid is None:
            try:
                ref = cat.search(
                    where, collections=optical_source, bbox=bbox, datetime=datetime, max_items=1
                )
                grid = cube.reference_geobox(ref, bbox=bbox)
            except MusLabError:
                grid = cube.reference_geobox(found[0][1], bbox=bbox)
        for coll, items in found:
            prefix = "rcm" if "rcm" in coll else "s1"
            if prefix == "rcm":
                sar = ard.prepare_rcm(items, geobox=grid, speckle=speckle, db=True)
            else:
                sar = ard.prepare_s1(items, geobox=grid, speckle=speckle, db=True, chunks=size)
            if dates is None:
                t = sar["time"].values
                dates = ard.regular_dates(t.min(), t.max(), every_days)
            parts.append(radar_features(sar, dates=dates, prefix=prefix))
            labels.append(prefix)
            sources += list(items)
    ds = parts[0] if len(parts) == 1 else stack_features(*parts, names=labels)
    return feature_cube(ds), recipe, sources


def _region_block(
    template: np.ndarray,
    block_info: dict[Any, Any] | None = None,
    *,
    shapes: list[tuple[Any, int]],
    codes: np.ndarray,
    tree: Any,
    affine: Any,
) -> np.ndarray:
    """Region codes of one block: burned polygons, then the nearest polygon elsewhere."""
    import rasterio.features
    import shapely
    from affine import Affine

    (y0, y1), (x0, x1) = block_info[0]["array-location"] if block_info else ((0, 0), (0, 0))
    transform = affine * Affine.translation(x0, y0)
    burned = rasterio.features.rasterize(
        shapes, out_shape=(y1 - y0, x1 - x0), transform=transform, fill=0, dtype="uint8",
        all_touched=True,
    )  # fmt: skip
    rows, cols = np.nonzero(burned == 0)
    if rows.size:
        xs, ys = transform * (cols + 0.5, rows + 0.5)
        hit = tree.query_nearest(shapely.points(xs, ys), all_matches=False)
        burned[rows[hit[0]], cols[hit[0]]] = codes[hit[1]]
    return burned


def region_map(
    regions: PolygonsLike | None,
    like: xr.DataArray,
    *,
    field: str = "region",
    layer: str | None = None,
) -> xr.DataArray:
    """Region code (uint8, 0 = none) per pixel of ``like``'s grid from region polygons, lazily.

    Give eco-region polygons (IOTA²'s ``ecoregion`` file). Pixels inside a polygon (touched by
    it) take its code; every other pixel takes the code of the nearest polygon, so reference
    polygons with a ``region`` per parcel (like the sample scenario's) give a Voronoi
    partition. Computed chunk by chunk on ``like``'s spatial chunks (the polygons and their
    spatial index travel with each task), so memory does not grow with the grid.

    Parameters
    ----------
    regions
        Vector file or GeoDataFrame with an integer ``field`` (1-255).
    like
        A cube on the target grid (its ``y``/``x`` chunks are used when it is lazy).
    field, layer
        Region code field; layer of a multi-layer file.

    Returns
    -------
    xarray.DataArray
        uint8 ``(y, x)`` named ``region``, dask-backed.

    Raises
    ------
    SamplesError
        The field is missing, codes outside 1-255, or no polygon overlaps the grid.
    """
    import dask.array as dsa
    import shapely

    gbox = cube.geobox_of(like)
    gdf = read_polygons(regions, label=field, layer=layer) if regions is not None else None
    if gdf is None:
        raise SamplesError("region_map needs region polygons (a vector file or GeoDataFrame).")
    if gbox.crs is None:
        raise SamplesError("The grid has no CRS: load it with mus_lab.cube or assign one.")
    gdf = gdf.to_crs(gbox.crs.to_wkt())
    codes = gdf[field].astype("int64").to_numpy()
    if (codes < 1).any() or (codes > 255).any():
        raise SamplesError(f"Region codes must be 1-255, got {sorted(set(codes.tolist()))}.")
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    if not shapely.intersects(geoms, shapely.box(*gbox.extent.boundingbox)).any():
        raise SamplesError("No region polygon overlaps the grid: check their CRS and extent.")
    ydim, xdim = like.get_axis_num("y"), like.get_axis_num("x")
    if like.chunks:
        chunks = (like.chunks[ydim], like.chunks[xdim])
    else:
        chunks = ((gbox.shape[0],), (gbox.shape[1],))
    template = dsa.zeros(tuple(gbox.shape), chunks=chunks, dtype="uint8")
    data = dsa.map_blocks(
        _region_block,
        template,
        dtype="uint8",
        shapes=list(zip(geoms, codes.tolist(), strict=True)),
        codes=codes.astype("uint8"),
        tree=shapely.STRtree(geoms),
        affine=gbox.affine,
    )
    coords: dict[str, Any] = {"y": like["y"], "x": like["x"]}
    if "spatial_ref" in like.coords:
        coords["spatial_ref"] = like["spatial_ref"]
    return xr.DataArray(data, dims=("y", "x"), coords=coords, name="region")
