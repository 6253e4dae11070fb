"""Reference pixels held out of every land-cover source, split for calibration and evaluation.

The sources are :class:`mus_lab.publish.LandCoverProduct` objects, made in memory by
classify (``LandCoverProduct.from_prediction``) or read from a catalog
(``LandCoverProduct.from_catalog``, :func:`mus_lab.recipes.sources_from_catalog`); each
records the ids of the reference polygons that trained and validated it.

:func:`split_held_out` turns the polygons that trained none of the maps into two disjoint
reference maps, both split by polygon: a *calibration* half (confusion matrices for the
masses) and an *evaluation* half (accuracy of the sources and of the fusion). The fusion is
then scored on pixels that neither trained a classifier nor calibrated its masses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import xarray as xr

from mus_lab.errors import FusionError
from mus_lab.publish import LandCoverProduct

__all__ = ["LandCoverSource", "split_held_out"]

#: A land-cover source to fuse is a land-cover product (made in memory or read).
LandCoverSource = LandCoverProduct


def split_held_out(
    polygons: Any,
    sources: Sequence[LandCoverSource],
    *,
    like: xr.DataArray | None = None,
    field: str = "code",
    id_field: str = "poly_id",
    layer: str | None = "reference",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Reference maps of the polygons held out of every source's training, split in two halves.

    A polygon is held out when it validated every source and trained none (the sources'
    ``validation_polygons`` / ``train_polygons``). Per class, the held-out polygons sorted by id
    go alternately to the *calibration* half (first, third...) and the *evaluation* half, so both
    halves hold whole polygons (never pixels of one parcel on both sides) of most classes.

    Parameters
    ----------
    polygons
        GeoDataFrame or vector file of the reference polygons (e.g. the ``landcover-truth``
        ``polygons`` asset).
    sources
        Land-cover products (:func:`mus_lab.recipes.sources_from_catalog`, or made in memory).
    like
        Map on the target grid (default: the first source's class map).
    field, id_field, layer
        Class-code and polygon-id columns; layer of a GeoPackage.

    Returns
    -------
    (calibration, evaluation)
        Two uint8 maps of class codes on the grid, 0 elsewhere.

    Raises
    ------
    FusionError
        A source does not record its validation polygons, or no polygon is held out of all.
    """
    import geopandas as gpd
    from rasterio import features

    if not sources:
        raise FusionError("split_held_out needs the land-cover sources (products).")
    for s in sources:
        if not s.validation_polygons:
            raise FusionError(
                f"The {s.name} product ({s.collection}) does not record its validation polygons "
                "(property mus_lab:training): rewrite it with the current classify.write_landcover."
            )
    held = set.intersection(*(set(map(str, s.validation_polygons)) for s in sources))
    held -= set().union(*(set(map(str, s.train_polygons)) for s in sources))
    gdf = (
        polygons if isinstance(polygons, gpd.GeoDataFrame) else gpd.read_file(polygons, layer=layer)
    )
    gdf = gdf[gdf[id_field].astype(str).isin(held)]
    if gdf.empty:
        raise FusionError(
            "No reference polygon was held out of every source's training: train the maps with "
            "the same polygons, seed and train_ratio (notebook 03 does)."
        )
    ref = sources[0].classification if like is None else like
    gbox = ref.odc.geobox
    gdf = gdf.to_crs(gbox.crs.to_wkt()) if gdf.crs is not None and gbox.crs is not None else gdf
    gdf = gdf.assign(_id=gdf[id_field].astype(str)).sort_values([field, "_id"])
    rank = gdf.groupby(field).cumcount().to_numpy()
    coords = {k: v for k, v in ref.coords.items() if set(v.dims) <= {"y", "x"}}
    halves = []
    for half in (0, 1):
        sub = gdf[rank % 2 == half]
        burned = (
            features.rasterize(
                zip(sub.geometry, sub[field].astype(int), strict=True),
                out_shape=(ref.sizes["y"], ref.sizes["x"]),
                transform=gbox.affine,
                fill=0,
                dtype="uint8",
            )
            if len(sub)
            else np.zeros((ref.sizes["y"], ref.sizes["x"]), np.uint8)
        )
        halves.append(xr.DataArray(burned, dims=("y", "x"), coords=coords))
    return halves[0], halves[1]
