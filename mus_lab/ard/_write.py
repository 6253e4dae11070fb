"""Write prepared cubes as COGs with STAC items (processing extension), into the local catalog.

Choice: COGs rather than Zarr, one file per variable and date, because every tool of the
field (QGIS, GDAL, odc-stac, stackstac, titiler) reads them, a later ``search`` + ``cube.load``
treats ARD exactly like any other collection, and a COG per date can be added without
rewriting a store. Each item links its source items (``derived_from``) and records the
software, version and parameters.

Atomicity: the whole collection is built in a temporary sibling folder and renamed into
place; only then is the root ``catalog.json`` rewritten (atomically) to link it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from rasterio.errors import RasterioError

from mus_lab._io import CogSpec, atomic_folder, write_cogs, write_json
from mus_lab.cube import geobox_of
from mus_lab.errors import ARDError

__all__ = ["write"]


def _nodata_for(da: xr.DataArray) -> float | int | None:
    if np.issubdtype(da.dtype, np.floating):
        return float("nan")
    if da.dtype == bool:
        return None
    return da.attrs.get("nodata", None)


def _source_links(sources: Iterable[Any]) -> list[pystac.Link]:
    links = []
    for it in sources:
        href = it.get_self_href() if isinstance(it, pystac.Item) else str(it)
        if href:
            links.append(pystac.Link("derived_from", href, media_type="application/geo+json"))
    return links


def write(
    ds: xr.Dataset,
    catalog: str | os.PathLike[str],
    collection: str,
    *,
    sources: Iterable[Any] = (),
    parameters: Mapping[str, Any] | None = None,
    description: str = "",
    overwrite: bool = False,
    level: str = "L2A-ARD",
    properties: Mapping[str, Any] | None = None,
    asset_fields: Mapping[str, Mapping[str, Any]] | None = None,
    extensions: Iterable[str] = (),
    files: Mapping[str, str | os.PathLike[str]] | None = None,
) -> pystac.Collection:
    """Write an ARD cube as COGs + a STAC collection added to a local catalog.

    Parameters
    ----------
    ds
        Prepared cube (``time``, ``y``, ``x``; time-less variables go into one ``summary`` item).
        A time-less variable with one extra dimension (e.g. ``("class", "y", "x")``) becomes
        one multi-band COG whose band descriptions are that dimension's coordinate values.
    catalog
        The local catalog's folder or ``catalog.json`` (e.g. the sample scenario's).
    collection
        Collection id of the product (e.g. ``"s2-l2a-ard"``).
    sources
        Source STAC items (linked as ``derived_from``).
    parameters
        Processing parameters recorded in each item.
    overwrite
        Replace an existing collection of the same id.
    level
        ``processing:level`` of the items (``"L2A-ARD"``, ``"L3-landcover"``, ...).
    properties
        Extra item properties (e.g. ``{"mus_lab:model": "rf"}``).
    asset_fields
        Extra fields per variable's asset, e.g. ``{"class": {"classification:classes": [...]}}``.
    extensions
        STAC extension schema URLs the items declare (e.g. the classification extension's).
    files
        Extra files attached to the ``summary`` item as assets, ``{asset key: path}``
        (e.g. ``{"zones": "zones.csv"}``): copied into the item's folder with the COGs,
        so they appear atomically with them. Needs time-less variables.

    Raises
    ------
    ARDError
        The cube has no grid, no valid pixel at all, or the collection exists.
    """
    root_json = Path(catalog)
    if root_json.is_dir():
        root_json = root_json / "catalog.json"
    if not root_json.exists():
        raise ARDError(
            f"No catalog.json at {root_json}: give the folder of a local STAC catalog (e.g. the sample scenario's catalog)."
        )
    dest = root_json.parent / collection
    if dest.exists() and not overwrite:
        raise ARDError(
            f"Collection folder {dest} exists: pass overwrite=True or choose another collection id."
        )
    gbox = geobox_of(ds)
    if files and not any("time" not in v.dims for v in ds.data_vars.values()):
        raise ARDError(
            "files= attaches to the summary item, which only time-less variables make: add one "
            "or drop files=."
        )
    try:
        return _write(
            ds,
            root_json,
            dest,
            collection,
            gbox,
            sources,
            parameters,
            description,
            _Extras(
                level,
                dict(properties or {}),
                dict(asset_fields or {}),
                tuple(extensions),
                {k: Path(v) for k, v in (files or {}).items()},
            ),
        )
    except RasterioError as exc:
        raise ARDError(
            f"Reading a source raster failed while writing {collection!r} ({exc}): a COG is probably "
            "corrupt or truncated (GDAL names it in the log above). Re-download that item, or leave it "
            "out of the search; nothing was written."
        ) from exc


def _any_nonzero(path: Path) -> bool:
    """Whether a written (uint8) mask has any non-zero pixel, read block by block."""
    import rasterio

    with rasterio.open(path) as src:
        return any(src.read(1, window=w).any() for _, w in src.block_windows(1))


@dataclass(frozen=True)
class _Extras:
    level: str
    properties: dict[str, Any]
    asset_fields: dict[str, Mapping[str, Any]]
    extensions: tuple[str, ...]
    files: dict[str, Path]


_FILE_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".gpkg": "application/geopackage+sqlite3",
    ".yaml": "application/yaml",
}


def _attach_files(item: pystac.Item, folder: Path, files: Mapping[str, Path]) -> None:
    for key, src in files.items():
        if not src.is_file():
            raise ARDError(f"files[{key!r}] = {src} is not a file: nothing written.")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / src.name)
        item.add_asset(
            key,
            pystac.Asset(
                href=f"./{src.name}",
                media_type=_FILE_TYPES.get(src.suffix.lower()),
                roles=["data"],
            ),
        )


def _write(
    ds: xr.Dataset,
    root_json: Path,
    dest: Path,
    collection: str,
    gbox: Any,
    sources: Iterable[Any],
    parameters: Mapping[str, Any] | None,
    description: str,
    extras: _Extras,
) -> pystac.Collection:
    from mus_lab import __version__

    footprint = gbox.extent.to_crs("EPSG:4326")
    geometry = footprint.json
    bbox = list(footprint.boundingbox)
    epsg = gbox.crs.epsg if gbox.crs is not None else None
    params = dict(parameters or {})
    params.update({k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float)})
    dynamic = [str(n) for n, v in ds.data_vars.items() if "time" in v.dims]
    static = [str(n) for n, v in ds.data_vars.items() if "time" not in v.dims]
    links = _source_links(sources)
    with atomic_folder(dest) as tmp:
        items: list[pystac.Item] = []
        specs: list[CogSpec] = []
        valid_paths: list[Path] = []
        groups: list[tuple[str, dt.datetime, list[str], xr.Dataset]] = []
        if "time" in ds.dims:
            for t in ds.time.values:
                when = pd.Timestamp(t).to_pydatetime().replace(tzinfo=dt.UTC)
                groups.append(
                    (f"{collection}-{when:%Y%m%d}", when, dynamic, ds[dynamic].sel(time=t))
                )
        if static:
            when = (
                pd.Timestamp(ds.time.values.max()).to_pydatetime().replace(tzinfo=dt.UTC)
                if "time" in ds.dims
                else dt.datetime.now(dt.UTC)
            )
            groups.append((f"{collection}-summary", when, static, ds[static]))
        for item_id, when, names, sub in groups:
            item = pystac.Item(
                item_id,
                geometry,
                bbox,
                when,
                properties={
                    "proj:epsg": epsg,
                    "proj:shape": list(gbox.shape),
                    "proj:transform": list(gbox.affine)[:6],
                    "processing:software": {"mus_lab": __version__},
                    "processing:level": extras.level,
                    "processing:lineage": description or f"mus_lab.ard -> {collection}",
                    "mus_lab:parameters": params,
                    **extras.properties,
                },
                collection=collection,
                stac_extensions=list(extras.extensions),
            )
            for link in links:
                item.add_link(link.clone())
            for name in names:
                da = sub[name]
                if da.dtype == bool:
                    da = da.astype("uint8")
                nodata = _nodata_for(da)
                path = tmp / item_id / f"{name}.tif"
                # A non-time extra dimension (e.g. ``class`` of a probability cube) becomes the
                # bands of one COG, described by its coordinate values.
                extra = [d for d in da.dims if d not in ("y", "x")]
                if len(extra) > 1:
                    raise ARDError(
                        f"Variable {name!r} has dims {da.dims}: one extra dimension at most "
                        "(besides time) can become the bands of a COG; split it first."
                    )
                band_names = [str(v) for v in da[extra[0]].values] if extra else None
                specs.append(
                    CogSpec(
                        da,
                        path,
                        nodata=nodata,
                        overview_resampling="average"
                        if np.issubdtype(da.dtype, np.floating)
                        else "nearest",
                        band_names=band_names,
                    )
                )
                if name == "valid":
                    valid_paths.append(path)
                band_info = {
                    "data_type": str(da.dtype),
                    **(
                        {"nodata": nodata if nodata == nodata else "nan"}
                        if nodata is not None
                        else {}
                    ),
                }
                item.add_asset(
                    name,
                    pystac.Asset(
                        href=f"./{name}.tif",
                        media_type=pystac.MediaType.COG,
                        roles=["data"],
                        extra_fields={
                            "raster:bands": [{**band_info, "description": b} for b in band_names]
                            if band_names
                            else [band_info],
                            **dict(extras.asset_fields.get(name, {})),
                        },
                    ),
                )
            if item_id == f"{collection}-summary" and extras.files:
                _attach_files(item, tmp / item_id, extras.files)
            items.append(item)
        # One streaming pass computes every asset (shared upstream work done once).
        write_cogs(specs)
        if valid_paths and not any(_any_nonzero(p) for p in valid_paths):
            raise ARDError(
                "No valid pixel in any date (all cloudy, masked or no data): nothing written. "
                "Widen the dates, relax the invalid classes or pick another area."
            )
        coll = pystac.Collection(
            collection,
            description or f"Analysis-ready data written by mus_lab {__version__}",
            pystac.Extent(
                pystac.SpatialExtent([bbox]),
                pystac.TemporalExtent(
                    [
                        [
                            min(i.datetime for i in items if i.datetime),
                            max(i.datetime for i in items if i.datetime),
                        ]
                    ]
                ),
            ),
        )
        coll.add_items(items)
        coll.normalize_hrefs(str(tmp))
        # Asset hrefs are relative to each item's own folder, where write_cog put them.
        coll.save(pystac.CatalogType.SELF_CONTAINED, dest_href=str(tmp))
    _link_into_root(root_json, collection)
    return pystac.Collection.from_file(str(dest / "collection.json"))


def _link_into_root(root_json: Path, collection: str) -> None:
    doc = json.loads(root_json.read_text())
    href = f"./{collection}/collection.json"
    links = [
        lk
        for lk in doc.get("links", [])
        if not (lk.get("rel") == "child" and lk.get("href") == href)
    ]
    links.append({"rel": "child", "href": href, "type": "application/json", "title": collection})
    doc["links"] = links
    write_json(doc, root_json)
