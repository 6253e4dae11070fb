"""STAC items, collections and the self-contained catalog of the scenario."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pystac
from pyproj import Transformer
from pystac.item_assets import ItemAssetDefinition

__all__ = ["asset", "build_catalog", "footprint", "make_item"]

_EXT = "https://stac-extensions.github.io"
EXT = {
    "eo": f"{_EXT}/eo/v1.1.0/schema.json",
    "raster": f"{_EXT}/raster/v1.1.0/schema.json",
    "proj": f"{_EXT}/projection/v1.1.0/schema.json",
    "sat": f"{_EXT}/sat/v1.0.0/schema.json",
    "sar": f"{_EXT}/sar/v1.0.0/schema.json",
    "view": f"{_EXT}/view/v1.0.0/schema.json",
    "processing": f"{_EXT}/processing/v1.1.0/schema.json",
    "classification": f"{_EXT}/classification/v1.1.0/schema.json",
    "mgrs": f"{_EXT}/mgrs/v1.0.0/schema.json",
}
COG = str(pystac.MediaType.COG)
GEOTIFF = str(pystac.MediaType.GEOTIFF)
GPKG = "application/geopackage+sqlite3"

COLLECTIONS = {
    "sentinel-2-l2a": (
        "Sentinel-2 L2A (generated)",
        ["eo", "raster", "proj", "sat", "view", "processing", "mgrs"],
    ),
    "sentinel-1-grd": (
        "Sentinel-1 GRD, geocoded sigma0 (generated)",
        ["raster", "proj", "sat", "sar", "processing"],
    ),
    "rcm-grd": (
        "RADARSAT Constellation Mission, geocoded RCM product folders (DN, LUTs; generated)",
        ["raster", "proj", "sat", "sar", "processing"],
    ),
    "dem": ("Digital elevation model (generated)", ["raster", "proj", "processing"]),
    "landcover-truth": (
        "Land-cover truth and reference polygons",
        ["raster", "proj", "classification", "processing"],
    ),
    "flood-truth": ("Flood truth per SAR date", ["raster", "proj", "classification", "processing"]),
}


def footprint(crs: str, bounds: tuple[float, float, float, float]) -> tuple[dict, list[float]]:
    """WGS84 polygon (densified edges) and bbox of ``bounds`` given in ``crs``."""
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    left, bottom, right, top = bounds
    pts = []
    for k in range(21):
        f = k / 20
        pts.append((left + f * (right - left), top))
    for k in range(21):
        f = k / 20
        pts.append((right, top - f * (top - bottom)))
    for k in range(21):
        f = k / 20
        pts.append((right - f * (right - left), bottom))
    for k in range(21):
        f = k / 20
        pts.append((left, bottom + f * (top - bottom)))
    lon, lat = to_ll.transform([p[0] for p in pts], [p[1] for p in pts])
    ring = [[round(x, 7), round(y, 7)] for x, y in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    bbox = [min(lon), min(lat), max(lon), max(lat)]
    return {"type": "Polygon", "coordinates": [ring]}, [round(v, 7) for v in bbox]


def asset(
    path: Path,
    *,
    title: str,
    epsg: int,
    transform: Any,
    shape: tuple[int, int],
    data_type: str,
    nodata: float | str | None,
    resolution: float,
    scale: float | None = None,
    offset: float | None = None,
    unit: str | None = None,
    eo_band: dict[str, Any] | None = None,
    classes: list[dict[str, Any]] | None = None,
    roles: tuple[str, ...] = ("data",),
    media_type: str = COG,
) -> pystac.Asset:
    """A raster asset (a COG by default) with projection, raster (and eo / classification) fields."""
    t = tuple(transform)[:6]
    left, top = t[2], t[5]
    right, bottom = left + t[0] * shape[1], top + t[4] * shape[0]
    band: dict[str, Any] = {"data_type": data_type, "spatial_resolution": resolution}
    if nodata is not None:
        band["nodata"] = nodata
    if scale is not None:
        band["scale"] = scale
    if offset is not None:
        band["offset"] = offset
    if unit is not None:
        band["unit"] = unit
    extra: dict[str, Any] = {
        "proj:epsg": epsg,
        "proj:shape": list(shape),
        "proj:transform": list(t),
        "proj:bbox": [left, min(bottom, top), right, max(bottom, top)],
        "raster:bands": [band],
    }
    if eo_band is not None:
        extra["eo:bands"] = [eo_band]
    if classes is not None:
        extra["classification:classes"] = classes
    return pystac.Asset(
        str(path), title=title, media_type=media_type, roles=list(roles), extra_fields=extra
    )


def make_item(
    item_id: str,
    when: dt.datetime,
    *,
    collection: str,
    geometry: dict,
    bbox: list[float],
    properties: dict[str, Any],
    assets: dict[str, pystac.Asset],
) -> pystac.Item:
    """An item with its collection's extensions declared."""
    item = pystac.Item(
        item_id,
        geometry,
        bbox,
        when,
        dict(properties),
        stac_extensions=[EXT[e] for e in COLLECTIONS[collection][1]],
    )
    for key, value in assets.items():
        item.add_asset(key, value)
    return item


def _collection(cid: str, items: list[pystac.Item], version: str) -> pystac.Collection:
    title, exts = COLLECTIONS[cid]
    bboxes = [i.bbox for i in items if i.bbox]
    spatial = [
        min(b[0] for b in bboxes),
        min(b[1] for b in bboxes),
        max(b[2] for b in bboxes),
        max(b[3] for b in bboxes),
    ]
    times = sorted(i.datetime for i in items if i.datetime)
    coll = pystac.Collection(
        cid,
        f"{title}: part of the mus_lab sample scenario, generated by mus_lab.sample "
        f"{version}. Synthetic data; not an observation of the Earth.",
        pystac.Extent(
            pystac.SpatialExtent([spatial]), pystac.TemporalExtent([[times[0], times[-1]]])
        ),
        title=title,
        license="CC0-1.0",
        stac_extensions=[EXT[e] for e in exts],
        keywords=["mus_lab", "sample", "synthetic"],
    )
    defs: dict[str, ItemAssetDefinition | dict[str, Any]] = {}
    for key, a in items[0].assets.items():
        extra = {
            k: v
            for k, v in a.extra_fields.items()
            if k in ("eo:bands", "raster:bands", "classification:classes")
        }
        if "raster:bands" in extra:
            extra["raster:bands"] = [
                {k: v for k, v in b.items() if k != "offset"} for b in extra["raster:bands"]
            ]
        defs[key] = ItemAssetDefinition.create(a.title, None, a.media_type, a.roles, extra)
    coll.item_assets = defs
    for item in items:
        coll.add_item(item)
    return coll


def build_catalog(root: Path, items: dict[str, list[pystac.Item]], *, version: str) -> Path:
    """Save a self-contained catalog of ``items`` (by collection id) under ``root``."""
    cat = pystac.Catalog(
        "mus-lab-sample",
        "Generated multi-sensor scenario (Sentinel-2, Sentinel-1, RCM, DEM and truth) "
        "for testing and teaching mus_lab.",
        title="mus_lab sample scenario",
    )
    for cid in COLLECTIONS:
        if items.get(cid):
            cat.add_child(_collection(cid, items[cid], version))
    cat.normalize_hrefs(str(root))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"
