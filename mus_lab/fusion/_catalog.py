"""The land-cover products of a catalog as fusion inputs, and reference pixels held out of them.

:func:`sources_from_catalog` reads what :func:`mus_lab.classify.write_landcover` wrote
(``landcover-optical``, ``landcover-radar``...): the class map, the probability cube, the
validation confusion matrix (``confusion`` asset, IOTA² layout) and the ids of the reference
polygons that trained and validated the map (item property ``mus_lab:training``).

:func:`split_held_out` turns the polygons that trained none of the maps into two disjoint
reference maps, both split by polygon: a *calibration* half (confusion matrices for the
masses) and an *evaluation* half (accuracy of the sources and of the fusion). The fusion is
then scored on pixels that neither trained a classifier nor calibrated its masses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pystac
import xarray as xr

from mus_lab import catalog as cat
from mus_lab.classify import LANDCOVER_COLLECTIONS, ConfusionMatrix
from mus_lab.errors import FusionError, MissingLandCoverError, MusLabError
from mus_lab.fusion._maps import open_map

__all__ = ["LandCoverSource", "sources_from_catalog", "split_held_out"]

_ASSETS = ("classification", "probability", "confusion")
_HOW = (
    "run notebooks/03_landcover.ipynb on this catalog first (or 'mus-lab landcover predict'), "
    "which writes the maps with their probabilities and confusion matrices"
)


@dataclass(frozen=True)
class LandCoverSource:
    """One land-cover product read from a catalog, ready to fuse.

    Attributes
    ----------
    name
        Source name (e.g. ``"optical"``).
    collection
        Its collection id.
    item
        Its STAC item (for ``derived_from`` links of the fused product).
    classification
        Class codes ``(y, x)``, uint8, 0 = no data (lazy).
    probability
        Class probabilities ``("class", "y", "x")``, float32, NaN = no data (lazy).
    confusion
        Validation confusion matrix of the map (its ``confusion`` asset).
    train_polygons, validation_polygons
        Ids of the reference polygons that trained / validated the classifier.
    legend
        Class code -> class name, from the item's classification extension.
    """

    name: str
    collection: str
    item: pystac.Item = field(repr=False)
    classification: xr.DataArray = field(repr=False)
    probability: xr.DataArray = field(repr=False)
    confusion: ConfusionMatrix = field(repr=False)
    train_polygons: tuple[Any, ...] = ()
    validation_polygons: tuple[Any, ...] = ()
    legend: Mapping[int, str] = field(default_factory=dict)

    def confusion_on(self, reference: xr.DataArray) -> ConfusionMatrix:
        """Confusion matrix of the class map against reference codes (0 = not a reference pixel).

        Parameters
        ----------
        reference
            Class codes on the map's grid, e.g. a half of :func:`split_held_out`.

        Returns
        -------
        ConfusionMatrix
            Rows = reference, columns = map, over the confusion asset's labels.

        Raises
        ------
        FusionError
            No pixel is both a reference pixel and mapped.
        """
        ref = np.asarray(reference.values)
        mapped = np.asarray(self.classification.values)
        at = (ref > 0) & (mapped > 0)
        if not at.any():
            raise FusionError(
                f"No reference pixel falls on the {self.name} map: check the polygons and the area."
            )
        return ConfusionMatrix.from_labels(ref[at], mapped[at], labels=self.confusion.labels)


def _clip(da: xr.DataArray, bbox: Sequence[float] | None) -> xr.DataArray:
    if bbox is None:
        return da
    from odc.geo.geom import box

    gbox = da.odc.geobox
    west, south, east, north = (float(v) for v in bbox)
    area = box(west, south, east, north, crs="EPSG:4326").to_crs(gbox.crs)
    left, bottom, right, top = area.boundingbox
    corners = [~gbox.affine * xy for xy in ((left, top), (right, bottom))]  # pixel (col, row)
    cols = sorted(c for c, _ in corners)
    rows = sorted(r for _, r in corners)
    ny, nx = gbox.shape
    out = da.isel(  # every pixel the area touches, as odc-stac loads a bbox
        y=slice(max(int(np.floor(rows[0])), 0), min(int(np.ceil(rows[1])), ny)),
        x=slice(max(int(np.floor(cols[0])), 0), min(int(np.ceil(cols[1])), nx)),
    )
    if out.sizes["y"] == 0 or out.sizes["x"] == 0:
        raise MissingLandCoverError(
            f"The area {list(bbox)} does not overlap the land-cover product {da.name!r}: give a "
            "bbox inside the mapped area, or None."
        )
    return out


def _read(
    name: str, collection: str, item: pystac.Item, bbox: Sequence[float] | None, chunks: int
) -> LandCoverSource:
    missing = [a for a in _ASSETS if a not in item.assets]
    if missing:
        raise MissingLandCoverError(
            f"The {collection!r} item {item.id!r} lacks the asset(s) {missing}: {_HOW} "
            "(classify.write_landcover writes 'confusion' only when given accuracy=...)."
        )
    href = {a: item.assets[a].get_absolute_href() for a in _ASSETS}
    classification = _clip(open_map(str(href["classification"]), chunks=chunks), bbox)
    probability = _clip(open_map(str(href["probability"]), chunks=chunks), bbox)
    training = item.properties.get("mus_lab:training", {}) or {}
    classes = item.assets["classification"].extra_fields.get("classification:classes", [])
    legend = {
        int(c["value"]): str(c.get("title") or c.get("name"))
        for c in classes
        if not c.get("nodata")
    }
    return LandCoverSource(
        name=name,
        collection=collection,
        item=item,
        classification=classification.rename(f"{name} class"),
        probability=probability.rename(f"{name} probability"),
        confusion=ConfusionMatrix.from_csv(str(href["confusion"])),
        train_polygons=tuple(training.get("train_polygons", ())),
        validation_polygons=tuple(training.get("validation_polygons", ())),
        legend=legend,
    )


def sources_from_catalog(
    catalog: str | os.PathLike[str],
    collections: Mapping[str, str] | None = None,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    chunks: int = 512,
) -> list[LandCoverSource]:
    """Read land-cover products (maps, probabilities, confusion matrices) from a catalog, lazily.

    Parameters
    ----------
    catalog
        Local catalog (folder or ``catalog.json``) or STAC API holding the products.
    collections
        Source name -> land-cover collection id, first source first (default
        ``{"optical": "landcover-optical", "radar": "landcover-radar"}``).
    bbox
        Area ``[west, south, east, north]`` in degrees: the maps are cropped to it.
    datetime
        Period searched (products whose period meets it); None: any.
    chunks
        Spatial chunk size of the lazy maps.

    Returns
    -------
    list of LandCoverSource
        One per collection, in order; the ``summary`` item of each (the latest when several).

    Raises
    ------
    MissingLandCoverError
        A collection is absent or empty, lacks the probability or confusion asset, or the area
        misses it; the message says to run notebook 03 first.

    Example
    -------
    >>> from mus_lab import fusion
    >>> optical, radar = fusion.sources_from_catalog("sample/catalog/catalog.json")  # doctest: +SKIP
    >>> fused = fusion.fuse_probabilities([optical.probability, radar.probability],
    ...                                   confusions=[optical.confusion, radar.confusion])  # doctest: +SKIP
    """
    wanted = dict(collections or {k: LANDCOVER_COLLECTIONS[k] for k in ("optical", "radar")})
    if len(wanted) < 1:
        raise FusionError("Give at least one land-cover collection to read.")
    out = []
    for name, collection in wanted.items():
        try:
            items = list(
                cat.search(os.fspath(catalog), collections=collection, bbox=bbox, datetime=datetime)
            )
        except MusLabError as exc:
            raise MissingLandCoverError(
                f"No land-cover product {collection!r} ({name}) in {os.fspath(catalog)} for this "
                f"area and period ({type(exc).__name__}): {_HOW}."
            ) from exc
        items.sort(key=lambda it: (it.id.endswith("-summary"), str(it.datetime or "")))
        out.append(_read(name, collection, items[-1], bbox, chunks))
    return out


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
        From :func:`sources_from_catalog`.
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
        raise FusionError("split_held_out needs the sources (from sources_from_catalog).")
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
