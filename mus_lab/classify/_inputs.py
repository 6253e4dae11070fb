"""Region maps for regional models (IOTA²'s eco-region stratification).

Feature cubes straight from a catalog are a recipe: :func:`mus_lab.recipes.features_from_catalog`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from mus_lab import cube
from mus_lab.classify._samples import PolygonsLike, read_polygons
from mus_lab.errors import SamplesError

__all__ = ["region_map"]


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
