"""Bounding boxes and search geometries: validation and shapely conversion."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import shapely.geometry
from shapely.geometry.base import BaseGeometry

from mus_lab.errors import InvalidBBoxError, InvalidQueryError

__all__ = ["BBox", "parse_bbox", "to_geojson", "to_shape"]

BBox = tuple[float, float, float, float]

_ORDER = "(min_lon, min_lat, max_lon, max_lat)"


def parse_bbox(value: str | Sequence[float]) -> BBox:
    """Parse and check a bounding box: the one bbox parser of the package (and of the CLI).

    Parameters
    ----------
    value
        ``(min_lon, min_lat, max_lon, max_lat)`` in degrees (EPSG:4326): a sequence of four
        numbers, or a string ``"w,s,e,n"`` as the command line's ``--bbox`` takes it.

    Returns
    -------
    tuple of float
        The box as a tuple of four floats ``(min_lon, min_lat, max_lon, max_lat)``.

    Raises
    ------
    InvalidBBoxError
        Wrong length, non-numeric values, swapped corners or latitudes outside [-90, 90]; the
        message gives the corrected box where it can.

    Examples
    --------
    >>> parse_bbox([5.0, 52.0, 6.0, 53.0])
    (5.0, 52.0, 6.0, 53.0)
    >>> parse_bbox("5,52,6,53")
    (5.0, 52.0, 6.0, 53.0)
    >>> parse_bbox("6,52,5,53")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mus_lab.errors.InvalidBBoxError: bbox (6.0, 52.0, 5.0, 53.0) has its corners swapped: ...
    """
    bbox: Any = value
    if isinstance(value, str):
        bbox = [v.strip() for v in value.split(",")]
    if isinstance(bbox, bytes) or not isinstance(bbox, Sequence):
        raise InvalidBBoxError(
            f"bbox must be four numbers {_ORDER} or a string 'w,s,e,n', got {value!r}."
        )
    if len(bbox) != 4:
        hint = " (3-D boxes are not supported: drop the heights)" if len(bbox) == 6 else ""
        raise InvalidBBoxError(
            f"bbox must have four numbers {_ORDER}, got {len(bbox)}: {value!r}{hint}."
        )
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError) as exc:
        raise InvalidBBoxError(f"bbox values must be numbers {_ORDER}, got {value!r}.") from exc
    for name, lat in (("min_lat", miny), ("max_lat", maxy)):
        if not -90.0 <= lat <= 90.0:
            raise InvalidBBoxError(
                f"bbox {name}={lat} is outside [-90, 90]: the order is {_ORDER}; "
                f"did you pass (lat, lon)? Try {(miny, minx, maxy, maxx)!r}."
            )
    if minx > maxx or miny > maxy:
        fixed = (min(minx, maxx), min(miny, maxy), max(minx, maxx), max(miny, maxy))
        raise InvalidBBoxError(
            f"bbox {(minx, miny, maxx, maxy)!r} has its corners swapped: the order is "
            f"{_ORDER}; use {fixed!r}."
        )
    return (minx, miny, maxx, maxy)


def to_geojson(intersects: Any) -> dict[str, Any]:
    """Return a GeoJSON geometry dict from a dict, a JSON string, or an object with ``__geo_interface__``.

    Features and single-feature collections are unwrapped to their geometry.

    Parameters
    ----------
    intersects
        A GeoJSON geometry, Feature or one-feature FeatureCollection (dict or JSON text), or a
        shapely geometry.

    Returns
    -------
    dict
        The GeoJSON geometry.

    Raises
    ------
    InvalidQueryError
        Not GeoJSON, several features, or an invalid geometry.

    Examples
    --------
    >>> to_geojson({"type": "Point", "coordinates": [1, 2]})["type"]
    'Point'
    """
    geom: Any = intersects
    if isinstance(geom, str):
        try:
            geom = json.loads(geom)
        except json.JSONDecodeError as exc:
            raise InvalidQueryError(
                f"intersects is a string but not GeoJSON ({exc}); pass a GeoJSON geometry dict "
                "or a shapely geometry."
            ) from exc
    if hasattr(geom, "__geo_interface__"):
        geom = geom.__geo_interface__
    if not isinstance(geom, Mapping) or "type" not in geom:
        raise InvalidQueryError(
            f"intersects must be a GeoJSON geometry or a shapely geometry, got {type(intersects).__name__}."
        )
    if geom["type"] == "Feature":
        geom = geom["geometry"]
    elif geom["type"] == "FeatureCollection":
        feats = geom.get("features", [])
        if len(feats) != 1:
            raise InvalidQueryError(
                f"intersects is a FeatureCollection of {len(feats)} features: pass one geometry "
                "(e.g. their union)."
            )
        geom = feats[0]["geometry"]
    out = dict(geom)
    try:
        shapely.geometry.shape(out)
    except Exception as exc:  # shapely raises several types for bad GeoJSON
        raise InvalidQueryError(f"intersects is not a valid GeoJSON geometry: {exc}.") from exc
    return out


def to_shape(
    geometry: Mapping[str, Any] | None, bbox: Sequence[float] | None = None
) -> BaseGeometry | None:
    """Return a shapely geometry for an item's GeoJSON geometry (or its bbox when it has none).

    Parameters
    ----------
    geometry
        The item's GeoJSON geometry, or ``None``.
    bbox
        The item's bbox (2-D or 3-D), used when ``geometry`` is ``None``.

    Returns
    -------
    shapely.geometry.base.BaseGeometry or None
        ``None`` when the item has neither.

    Examples
    --------
    >>> to_shape(None, [0, 0, 1, 1]).bounds
    (0.0, 0.0, 1.0, 1.0)
    """
    if geometry is not None:
        return shapely.geometry.shape(geometry)
    if bbox is not None and len(bbox) >= 4:
        half = len(bbox) // 2
        return shapely.geometry.box(bbox[0], bbox[1], bbox[half], bbox[half + 1])
    return None
