"""Per-zone tables of flooded and at-risk area per land-cover class (exactextract).

One raster carries everything the table needs, packed per pixel as
``code = class * 16 + flooded + 2 * flooded_low + 4 * flooded_high + 8 * at_risk``
(uint16, 0 = no data). It is streamed to a temporary GeoTIFF and exactextract reads it
once per zone (``unique``, ``frac`` and ``count`` with partial-pixel coverage), so zones
of any shape (administrative units, catchments, the sample's quadrants) get exact areas
and memory does not grow with the area. Several features with the same zone value are
summed into one zone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pandas as pd
import xarray as xr

from mus_lab._io import write_cog
from mus_lab.contracts import ZONE_COLUMNS
from mus_lab.cube import describe_grid, match_grid
from mus_lab.errors import FloodInputError
from mus_lab.flood._grid import keep_grid
from mus_lab.flood._risk import RiskConfig

__all__ = ["ZONE_COLUMNS", "grid_zones", "read_zones", "zone_table"]


def grid_zones(geobox: Any, *, rows: int = 2, cols: int = 2) -> Any:
    """Regular rectangular zones over a grid (``zone`` = ``"r<row>c<col>"``), as a GeoDataFrame.

    Handy when no administrative units are at hand; write it with ``.to_file(...)``.

    Parameters
    ----------
    geobox
        The grid (an odc-geo ``GeoBox``) whose extent is cut.
    rows, cols
        Number of zones down and across (equal sizes).

    Returns
    -------
    geopandas.GeoDataFrame
        ``rows * cols`` rectangles in the grid's CRS, field ``zone`` (``"r1c1"``...).

    Raises
    ------
    FloodInputError
        ``rows`` or ``cols`` below 1.

    Examples
    --------
    >>> from odc.geo.geobox import GeoBox
    >>> grid = GeoBox.from_bbox((0, 0, 640, 640), "EPSG:32633", resolution=10)
    >>> grid_zones(grid, rows=1, cols=2)["zone"].tolist()
    ['r1c1', 'r1c2']
    """
    import geopandas as gpd
    from shapely.geometry import box

    if rows < 1 or cols < 1:
        raise FloodInputError(f"rows={rows}, cols={cols}: give at least one row and column.")
    x0, y0, x1, y1 = geobox.extent.boundingbox
    dx, dy = (x1 - x0) / cols, (y1 - y0) / rows
    names, shapes = [], []
    for r in range(rows):
        for c in range(cols):
            names.append(f"r{r + 1}c{c + 1}")
            shapes.append(box(x0 + c * dx, y1 - (r + 1) * dy, x0 + (c + 1) * dx, y1 - r * dy))
    return gpd.GeoDataFrame({"zone": names}, geometry=shapes, crs=geobox.crs.to_wkt())


def read_zones(zones: Any, *, zone_field: str | None = None) -> tuple[Any, str]:
    """A GeoDataFrame of zones and the name of its zone field.

    Parameters
    ----------
    zones
        Any vector file geopandas reads (GeoPackage, shapefile, GeoJSON...) or a
        GeoDataFrame.
    zone_field
        Column naming the zones; default ``zone`` if there, else the first non-geometry
        column.

    Returns
    -------
    (geopandas.GeoDataFrame, str)
        The zones (a ``zone`` field 1..n is added when they have no other column) and the
        zone field's name.

    Raises
    ------
    FloodInputError
        Unreadable file, no polygon, or an unknown zone field.
    """
    import geopandas as gpd

    if isinstance(zones, gpd.GeoDataFrame):
        gdf = zones
    else:
        try:
            gdf = gpd.read_file(zones)
        except Exception as exc:
            raise FloodInputError(
                f"Cannot read zones from {zones!s} ({exc}): give a vector file (GeoPackage, "
                "shapefile, GeoJSON) of polygons."
            ) from exc
    if gdf.empty or gdf.crs is None:
        raise FloodInputError(
            f"The zones ({zones!s}) are empty or have no CRS: give polygons with a CRS."
        )
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    field = zone_field or ("zone" if "zone" in columns else (columns[0] if columns else None))
    if field is None:
        gdf = gdf.assign(zone=np.arange(1, len(gdf) + 1))
        field = "zone"
    if field not in gdf.columns:
        raise FloodInputError(
            f"The zones have no field {field!r}: choose one of {columns} (zone_field=...)."
        )
    return gdf, field


def _codes(
    summary: xr.Dataset, risk: xr.Dataset, landcover: xr.DataArray, config: RiskConfig
) -> xr.DataArray:
    lc = landcover.drop_vars([c for c in landcover.coords if c not in ("y", "x", "spatial_ref")])
    known = xr.zeros_like(lc, dtype=bool)
    for c in config.classes:
        known = known | (lc == c)
    flooded = (summary["max_extent"] == 1).astype(np.uint16)
    low = (summary["max_extent_low"] == 1).astype(np.uint16)
    high = (summary["max_extent_high"] == 1).astype(np.uint16)
    at_risk = (risk["risk_class"] >= config.at_risk_min_class).astype(np.uint16)
    code = lc.astype(np.uint16) * 16 + flooded + 2 * low + 4 * high + 8 * at_risk
    out = xr.where(known & (lc > 0), code, 0).astype(np.uint16)
    return keep_grid(out.rename("zone_codes"), summary)


def zone_table(
    summary: xr.Dataset,
    risk: xr.Dataset,
    landcover: xr.DataArray,
    zones: Any,
    *,
    zone_field: str | None = None,
    config: RiskConfig | None = None,
) -> pd.DataFrame:
    """Flooded and at-risk area (ha) per zone and land-cover class.

    Parameters
    ----------
    summary
        :func:`~mus_lab.flood.flood_summary` output (``max_extent`` and its bounds).
    risk
        :func:`~mus_lab.flood.risk` output (``risk_class``).
    landcover
        Land-cover codes on the same grid.
    zones, zone_field
        See :func:`read_zones`; reprojected to the grid's CRS.
    config
        :class:`RiskConfig`: class names and ``at_risk_min_class``.

    Returns
    -------
    pandas.DataFrame
        Columns ``zone, class_code, class_name, flooded_ha, flooded_ha_low,
        flooded_ha_high, at_risk_ha``: one row per zone and class present in it.

    Raises
    ------
    FloodInputError
        Unreadable zones, a geographic grid (exact zone areas need metres: per-pixel areas
        vary with latitude), or no zone overlapping the grid.
    GridMismatchError
        The land cover is on another grid than the summary (beyond 1e-6 of a pixel).
    """
    from exactextract import exact_extract

    cfg = config or RiskConfig.default()
    landcover = match_grid(landcover, summary, names=("land cover", "the flood summary"))
    gdf, field = read_zones(zones, zone_field=zone_field)
    gbox = summary.odc.geobox
    if gbox.crs is None or gbox.crs.geographic:
        raise FloodInputError(
            "Zone areas need a projected grid in metres: load the products on a UTM grid."
        )
    gdf = gdf.to_crs(gbox.crs.to_wkt())
    pixel_ha = abs(gbox.affine.a * gbox.affine.e) / 10_000.0
    codes = _codes(summary, risk, landcover, cfg)
    with tempfile.TemporaryDirectory(prefix="mus_lab_zones_") as tmp:
        path = Path(tmp) / "codes.tif"
        write_cog(codes, path, nodata=0)
        zones_in = gdf[[field, gdf.geometry.name]].reset_index(drop=True)
        stats = exact_extract(
            os.fspath(path),
            zones_in,
            ["unique", "frac", "count"],
            include_cols=[field],
            output="pandas",
        )
    rows: dict[tuple[Any, int], dict[str, float]] = {}
    for _, rec in stats.iterrows():
        values = np.atleast_1d(rec["unique"])
        fracs = np.atleast_1d(rec["frac"])
        total = float(rec["count"])
        for value, frac in zip(values, fracs, strict=True):
            v = int(value)
            if v <= 0:
                continue
            ha = float(frac) * total * pixel_ha
            key = (rec[field], v // 16)
            acc = rows.setdefault(key, dict.fromkeys(ZONE_COLUMNS[3:], 0.0))
            acc["flooded_ha"] += ha * (v & 1 > 0)
            acc["flooded_ha_low"] += ha * (v & 2 > 0)
            acc["flooded_ha_high"] += ha * (v & 4 > 0)
            acc["at_risk_ha"] += ha * (v & 8 > 0)
    if not rows:
        raise FloodInputError(
            f"No zone of {zones!s} overlaps the product's grid ({describe_grid(gbox)}): give "
            "zones over the mapped area."
        )
    table = pd.DataFrame(
        [
            {
                "zone": zone,
                "class_code": code,
                "class_name": cfg.classes[code].name if code in cfg.classes else str(code),
                **{k: round(v, 4) for k, v in acc.items()},
            }
            for (zone, code), acc in rows.items()
        ],
        columns=list(ZONE_COLUMNS),
    )
    return table.sort_values(["zone", "class_code"]).reset_index(drop=True)
