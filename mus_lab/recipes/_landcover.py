"""Feature cubes from a catalog, per sensor set: the recipe a land-cover model records.

Every step is a stage function (``ard.prepare_s2``, ``ard.s2_time_series``,
``classify.optical_features``...): the recipe only searches and chains them, so a model trained
through this function and one trained through the same stage calls written out by hand record
the same recipe and give the same map. :func:`replay_features` rebuilds the features of a
recorded recipe (``mus-lab landcover predict`` does exactly that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import ard, classify, cube
from mus_lab._settings import resolve_chunks
from mus_lab.classify import RECIPE_ATTR, FeatureOptions
from mus_lab.errors import FeatureMismatchError
from mus_lab.recipes._search import CatalogLike, find, source_of

__all__ = ["features_from_ard", "features_from_catalog", "optical_bands_of", "replay_features"]

#: The spectral indices :func:`ard.s2_time_series` adds, and the bands each needs.
_INDEX_BANDS: dict[str, tuple[str, ...]] = {
    "NDVI": ("red", "nir"),
    "NDWI": ("green", "nir"),
    "MNDWI": ("green", "swir16"),
}
#: The bands IOTA²'s features (``ndwi_iota2``, ``brightness``) need at the least.
_IOTA2_BANDS = ("red", "nir", "swir16")


def optical_bands_of(variables: Sequence[str]) -> tuple[str, ...]:
    """The Sentinel-2 bands the optical variables of a recipe are computed from.

    Parameters
    ----------
    variables
        Optical variables (``FeatureOptions.optical_variables``).

    Returns
    -------
    tuple of str
        Canonical band names, in :data:`mus_lab.ard.S2_BANDS` order. ``brightness`` (and
        any variable not known here) needs every band: it sums over the bands present.

    Examples
    --------
    >>> optical_bands_of(["ndvi"])
    ('red', 'nir')
    """
    need: set[str] = set()
    for v in variables:
        if v in ard.S2_BANDS:
            need.add(v)
        elif v.upper() in _INDEX_BANDS:
            need.update(_INDEX_BANDS[v.upper()])
        elif v == "ndwi_iota2":
            need.update(_IOTA2_BANDS)
        else:  # brightness, or a variable of a newer recipe: every band
            need.update(ard.S2_BANDS)
    return tuple(b for b in ard.S2_BANDS if b in need)


def _optical(s2: xr.Dataset, opts: FeatureOptions) -> xr.Dataset:
    """Optical features of prepared S2 ARD: the indices its bands allow, then the variables."""
    bands = {
        str(n)
        for n, v in s2.data_vars.items()
        if n not in ("valid", "quality") and "time" in v.dims
    }
    indices = tuple(i for i, need in _INDEX_BANDS.items() if set(need) <= bands)
    ts = ard.s2_time_series(
        s2, every_days=opts.every_days, indices=indices, iota2=set(_IOTA2_BANDS) <= bands
    )
    return classify.optical_features(ts, opts.optical_variables)


def _radar(
    sar: xr.Dataset, prefix: str, dates: Any, opts: FeatureOptions
) -> tuple[xr.Dataset, Any]:
    """Radar features of prepared SAR ARD, on ``dates`` (default: from its own times)."""
    if dates is None:
        t = sar["time"].values
        dates = ard.regular_dates(t.min(), t.max(), opts.every_days)
    return classify.radar_features(sar, dates=dates, prefix=prefix), dates


def _assemble(parts: Sequence[xr.Dataset], labels: Sequence[str]) -> xr.DataArray:
    ds = parts[0] if len(parts) == 1 else classify.stack_features(*parts, names=labels)
    return classify.feature_cube(ds)


def features_from_ard(
    options: FeatureOptions | None = None,
    *,
    s2: xr.Dataset | None = None,
    sar: Mapping[str, xr.Dataset] | None = None,
) -> xr.DataArray:
    """The feature cube of a sensor set from ARD already prepared (no search, no loading).

    The same computation as :func:`features_from_catalog` after its ``prepare_*`` calls: a
    production chain gives it the ARD files its ``ard.s2`` / ``ard.sar`` steps wrote.

    Parameters
    ----------
    options
        :class:`~mus_lab.classify.FeatureOptions` (sensors, dates, variables).
    s2
        Sentinel-2 ARD as :func:`mus_lab.ard.prepare_s2` gives it (reflectance bands with
        ``time``, and ``valid``); needed for the optical and stacked sets.
    sar
        ``{prefix: ARD}`` (prefix ``s1`` or ``rcm``) as :func:`mus_lab.ard.prepare_s1`
        gives it with ``db=True`` (``vv``, ``vh``, ``valid``), in ``options.radar_sources``
        order; needed for the radar and stacked sets.

    Returns
    -------
    xarray.DataArray
        The ``(feature, y, x)`` cube, lazy.

    Raises
    ------
    FeatureMismatchError
        The sensor set needs ARD that is not given, or a variable cannot be computed from it.

    Examples
    --------
    >>> from mus_lab import ard, catalog
    >>> s2 = ard.prepare_s2(catalog.search(tiny.catalog_path, collections="sentinel-2-l2a"))
    >>> feats = features_from_ard(FeatureOptions(every_days=30), s2=s2)
    >>> feats.dims
    ('feature', 'y', 'x')
    """
    opts = options or FeatureOptions()
    parts: list[xr.Dataset] = []
    labels: list[str] = []
    dates = None
    if opts.sensors in ("optical", "stacked"):
        if s2 is None:
            raise FeatureMismatchError(
                f"Sensor set {opts.sensors!r} needs Sentinel-2 ARD: give s2=."
            )
        parts.append(_optical(s2, opts))
        labels.append("optical")
        dates = parts[0]["time"].values
    if opts.sensors in ("radar", "stacked"):
        if not sar:
            raise FeatureMismatchError(
                f"Sensor set {opts.sensors!r} needs SAR ARD: give sar={{'s1': ...}}."
            )
        for prefix, ds in sar.items():
            radar, dates = _radar(ds, prefix, dates, opts)
            parts.append(radar)
            labels.append(prefix)
    return _assemble(parts, labels)


def features_from_catalog(
    catalog: CatalogLike,
    options: FeatureOptions | None = None,
    *,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    geobox: GeoBox | None = None,
    chunks: int | None = None,
    **overrides: Any,
) -> tuple[xr.DataArray, dict[str, Any], list[Any]]:
    """Search a catalog and build the feature cube of a sensor set, lazily.

    Parameters
    ----------
    catalog
        Local catalog, STAC API URL, or a :class:`~mus_lab.catalog.SearchResult` already found
        (with ``sentinel-2-l2a`` and/or ``sentinel-1-grd``/``rcm-grd`` items).
    options
        :class:`~mus_lab.classify.FeatureOptions` (sensors, dates, variables, speckle...).
    bbox, datetime
        Area (lon/lat) and interval of the search; ``bbox`` also sets the grid.
    geobox
        The grid (default: the Sentinel-2 10 m grid of ``bbox``, or of the items).
    chunks
        Spatial chunk size (default: the setting ``chunk_size``).
    **overrides
        Fields of :class:`~mus_lab.classify.FeatureOptions` to change (``sensors="radar"``).

    Returns
    -------
    (features, recipe, sources)
        The ``(feature, y, x)`` cube, the recipe (options + search, JSON-friendly, also in
        ``features.attrs["mus_lab:recipe"]``) and the source items used.

    Raises
    ------
    FeatureMismatchError
        Unknown sensor set, or no radar collection found.
    EmptySearchError
        No Sentinel-2 item for an optical or stacked set.

    Examples
    --------
    >>> feats, recipe, items = features_from_catalog(tiny.catalog_path, every_days=30)
    >>> feats.dims, recipe["sensors"], recipe["catalog"] == str(tiny.catalog_path)
    (('feature', 'y', 'x'), 'optical', True)
    """
    opts = options or FeatureOptions()
    if overrides:
        opts = FeatureOptions.from_dict({**opts.to_dict(), **overrides})
    size = resolve_chunks(chunks)
    spatial = {"x": size, "y": size}
    sources: list[Any] = []
    parts: list[xr.Dataset] = []
    labels: list[str] = []
    grid = geobox
    dates = None
    if opts.sensors in ("optical", "stacked"):
        items = find(catalog, opts.optical_source, bbox=bbox, datetime=datetime)
        s2 = ard.prepare_s2(
            items,
            geobox=grid,
            bbox=None if grid is not None else bbox,
            chunks={"time": -1, **spatial},
        )
        opt = _optical(s2, opts)
        grid, dates = cube.geobox_of(s2), opt["time"].values
        parts.append(opt)
        labels.append("optical")
        sources += list(items)
    if opts.sensors in ("radar", "stacked"):
        found = [
            (coll, items)
            for coll in opts.radar_sources
            if (items := find(catalog, coll, bbox=bbox, datetime=datetime, required=False))
        ]
        if not found:
            raise FeatureMismatchError(
                f"No radar items in {list(opts.radar_sources)} for this area and interval: "
                "check the catalog or use sensors='optical'."
            )
        if grid is None:
            ref = find(catalog, opts.optical_source, bbox=bbox, datetime=datetime, required=False)
            grid = cube.reference_geobox(ref[:1] or found[0][1], bbox=bbox)
        for coll, items in found:
            prefix = "rcm" if "rcm" in coll else "s1"
            if prefix == "rcm":
                sar = ard.prepare_rcm(items, geobox=grid, speckle=opts.speckle, db=True)
            else:
                sar = ard.prepare_s1(
                    items, geobox=grid, speckle=opts.speckle, db=True, chunks=spatial
                )
            radar, dates = _radar(sar, prefix, dates, opts)
            parts.append(radar)
            labels.append(prefix)
            sources += list(items)
    features = _assemble(parts, labels)
    recipe = {
        **classify.recipe_of(features),  # what the stages recorded (the grid among it)
        **opts.to_dict(),
        "bbox": list(bbox) if bbox else None,
        "datetime": datetime,
        "catalog": source_of(catalog),
    }
    features.attrs[RECIPE_ATTR] = recipe
    return features, recipe, sources


def replay_features(
    recipe: Mapping[str, Any], *, catalog: CatalogLike | None = None, chunks: int | None = None
) -> tuple[xr.DataArray, dict[str, Any], list[Any]]:
    """Rebuild the features of a recorded recipe (a model's ``metadata.recipe``).

    Parameters
    ----------
    recipe
        The recipe (options + search) a model recorded.
    catalog
        Where to search (default: the recipe's catalog): the same area and period are mapped,
        on the very grid the recipe recorded, so the features are the model's.
    chunks
        Spatial chunk size (default: the setting).

    Returns
    -------
    (features, recipe, sources)
        As :func:`features_from_catalog`.

    Raises
    ------
    FeatureMismatchError
        The recipe names no sensors (the model was trained on features of unknown origin), or
        no catalog is known.

    Examples
    --------
    >>> feats, recipe, _ = features_from_catalog(tiny.catalog_path, every_days=30)
    >>> again, _, _ = replay_features(recipe)
    >>> list(again["feature"].values) == list(feats["feature"].values)
    True
    """
    if not recipe.get("sensors"):
        raise FeatureMismatchError(
            "The model records no feature recipe (sensors, dates, variables): it was trained on "
            "features built outside mus_lab's stages. Build the same features yourself and call "
            "classify.predict(features, model)."
        )
    where = catalog if catalog is not None else recipe.get("catalog")
    grid = recipe.get("grid")
    if where is None:
        raise FeatureMismatchError(
            "The recipe records no catalog (its features were built from items in memory): "
            "give catalog= (the catalog or STAC API to map)."
        )
    return features_from_catalog(
        where,
        FeatureOptions.from_dict(recipe),
        bbox=recipe.get("bbox"),
        datetime=recipe.get("datetime"),
        geobox=_geobox(grid) if grid else None,
        chunks=chunks,
    )


def _geobox(grid: Mapping[str, Any]) -> GeoBox:
    from affine import Affine

    return GeoBox(tuple(grid["shape"]), Affine(*grid["transform"]), grid["crs"])
