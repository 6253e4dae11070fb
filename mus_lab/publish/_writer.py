"""The one writer of products: COGs + STAC items (proj, raster, processing, file, classification).

Choice: COGs rather than Zarr, one file per variable and date, because every tool of the
field (QGIS, GDAL, odc-stac, stackstac, titiler) reads them, a later ``search`` + ``cube.load``
treats a product exactly like any other collection, and a COG per date can be added without
rewriting a store. Each item links its source items (``derived_from``), records the software,
version and parameters (processing extension), and gives every asset its ``file:size`` and
``file:checksum`` (sha2-256 multihash), so a reader can verify what it opens.

Atomicity: the writer takes the collection's lock (:mod:`mus_lab.publish._lock`), sweeps what
killed writers left, builds the whole collection in a temporary sibling folder
(``.<collection>.tmp-<pid>-*``) and renames it into place; only then is the root
``catalog.json`` rewritten (atomically, under its own lock) to link it. A writer killed at any
moment leaves either the previous collection or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
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
from mus_lab.catalog._events import announce_new_items, has_listeners
from mus_lab.contracts import EXTENSIONS, ProductContract
from mus_lab.cube import geobox_of
from mus_lab.errors import ProductContractError, PublishError
from mus_lab.publish._lock import collection_lock, root_lock

__all__ = ["Attachment", "catalog_json", "checksum", "write_collection"]

_FILE_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".gpkg": "application/geopackage+sqlite3",
    ".yaml": "application/yaml",
    ".tif": str(pystac.MediaType.COG),
}


@dataclass(frozen=True)
class Attachment:
    """A non-raster file attached to a product's ``summary`` item (a table, a model, a report).

    Attributes
    ----------
    path
        The file to copy into the item's folder.
    title
        What it is (the asset's title).
    roles
        STAC asset roles (default ``("metadata",)``).
    media_type
        Media type (default from the file's suffix).
    """

    path: Path
    title: str | None = None
    roles: tuple[str, ...] = ("metadata",)
    media_type: str | None = None


def checksum(path: str | os.PathLike[str]) -> str:
    """The ``file:checksum`` of a file: its sha2-256 as a multihash in hex (``1220`` + digest).

    Parameters
    ----------
    path
        File to hash (read by 1 MiB blocks).

    Returns
    -------
    str

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = p.write_bytes(b"abc")
    >>> checksum(p)[:12]
    '1220ba7816bf'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return "1220" + h.hexdigest()


def catalog_json(catalog: str | os.PathLike[str]) -> Path:
    """The root ``catalog.json`` of a local catalog given as its folder or its file.

    Parameters
    ----------
    catalog
        Folder or ``catalog.json``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    PublishError
        No ``catalog.json`` there.
    """
    root_json = Path(catalog)
    if root_json.is_dir():
        root_json = root_json / "catalog.json"
    if not root_json.is_file():
        raise PublishError(
            f"No catalog.json at {root_json}: give the folder of a local STAC catalog (e.g. the "
            "sample scenario's catalog, `mus-lab sample OUT`), or create one with "
            "pystac.Catalog(...).save()."
        )
    return root_json


def _nodata_for(da: xr.DataArray, contract: ProductContract | None) -> float | int | None:
    if contract is not None:
        try:
            return contract.variable(str(da.name)).nodata
        except KeyError:
            pass
    if np.issubdtype(da.dtype, np.floating):
        return float("nan")
    if da.dtype == bool:
        return None
    return da.attrs.get("nodata", None)


def _conform(ds: xr.Dataset, contract: ProductContract | None, collection: str) -> xr.Dataset:
    """Check a cube against its contract (variables present, dtypes) before anything is written."""
    if contract is None:
        return ds
    missing = [n for n in contract.required if n not in ds.data_vars]
    if missing:
        raise ProductContractError(
            f"Cannot write {collection!r} as a {contract.kind} product: variable(s) {missing} are "
            f"missing (the contract mus_lab.contracts.{contract.kind} needs {list(contract.required)})."
        )
    out = {}
    for name, da in ds.data_vars.items():
        try:
            var = contract.variable(str(name))
        except KeyError:
            if not contract.open_variables:
                raise ProductContractError(
                    f"Cannot write {collection!r}: variable {name!r} is not part of a "
                    f"{contract.kind} product (allowed: {list(contract.names)}). Drop it first."
                ) from None
            out[name] = da
            continue
        want = np.dtype(var.dtype)
        if da.dtype == want or (da.dtype == bool and want == np.uint8):
            out[name] = da
        elif np.can_cast(da.dtype, want, casting="same_kind"):
            out[name] = da.astype(want)
        else:
            raise ProductContractError(
                f"Cannot write {collection!r}: variable {name!r} is {da.dtype}, the "
                f"{contract.kind} contract says {want}. Convert it (or fix the stage that made it)."
            )
    return ds.assign(out)


def _source_links(sources: Iterable[Any]) -> list[pystac.Link]:
    links = []
    for it in sources:
        href = it.get_self_href() if isinstance(it, pystac.Item) else str(it)
        if href:
            links.append(pystac.Link("derived_from", href, media_type="application/geo+json"))
    return links


def write_collection(
    ds: xr.Dataset,
    catalog: str | os.PathLike[str],
    collection: str,
    *,
    contract: ProductContract | None = None,
    sources: Iterable[Any] = (),
    parameters: Mapping[str, Any] | None = None,
    description: str = "",
    overwrite: bool = False,
    level: str | None = None,
    properties: Mapping[str, Any] | None = None,
    asset_fields: Mapping[str, Mapping[str, Any]] | None = None,
    extensions: Iterable[str] = (),
    files: Mapping[str, str | os.PathLike[str] | Attachment] | None = None,
    require_valid: bool = True,
    locked: bool = False,
) -> pystac.Collection:
    """Write a cube as COGs + a STAC collection added to a local catalog, atomically.

    Parameters
    ----------
    ds
        The cube (``time``, ``y``, ``x``; time-less variables go into one ``summary`` item).
        A time-less variable with one extra dimension (e.g. ``("class", "y", "x")``) becomes
        one multi-band COG whose band descriptions are that dimension's coordinate values.
    catalog
        The local catalog's folder or ``catalog.json``.
    collection
        Collection id of the product.
    contract
        The product's contract (:mod:`mus_lab.contracts`): variables are checked and cast to
        its dtypes, no-data values and level come from it. ``None`` writes the cube as it is.
    sources
        Source STAC items or hrefs (``derived_from`` links).
    parameters
        Processing parameters recorded in each item (``mus_lab:parameters``).
    description
        Collection description and ``processing:lineage``.
    overwrite
        Replace an existing collection of the same id.
    level
        ``processing:level`` (default: the contract's).
    properties
        Extra item properties.
    asset_fields
        Extra fields per variable's asset, e.g. ``{"class": {"classification:classes": [...]}}``.
    extensions
        STAC extension schema URLs the items declare besides the contract's.
    files
        Extra files attached to the ``summary`` item, ``{asset key: path or Attachment}``:
        copied into the item's folder with the COGs, so they appear atomically with them.
    require_valid
        Refuse a cube whose ``valid`` variable is false everywhere.
    locked
        The caller already holds the collection's lock (:func:`collection_lock`).

    Returns
    -------
    pystac.Collection
        As written, read back from disk.

    Raises
    ------
    PublishError
        No catalog there, the collection exists and ``overwrite`` is False, a source raster
        cannot be read, or ``files`` cannot be attached.
    ProductContractError
        The cube does not match ``contract``.
    ARDError
        No valid pixel in any date (``require_valid``).

    Examples
    --------
    >>> import tempfile
    >>> from odc.geo.geobox import GeoBox
    >>> from odc.geo.xr import xr_zeros
    >>> root = Path(tempfile.mkdtemp())
    >>> pystac.Catalog("c", "demo").normalize_and_save(str(root), pystac.CatalogType.SELF_CONTAINED)
    >>> gbox = GeoBox.from_bbox((500000, 4000000, 500640, 4000640), "EPSG:32631", resolution=10)
    >>> ds = xr.Dataset({"hazard": xr_zeros(gbox, dtype="float32")})
    >>> coll = write_collection(ds, root, "demo-product", level="L4-demo")
    >>> item = next(coll.get_items())
    >>> item.id, sorted(item.assets), item.assets["hazard"].extra_fields["file:checksum"][:4]
    ('demo-product-summary', ['hazard'], '1220')
    """
    root_json = catalog_json(catalog)
    dest = root_json.parent / collection
    ds = _conform(ds, contract, collection)
    gbox = geobox_of(ds)
    if files and not any("time" not in v.dims for v in ds.data_vars.values()):
        raise PublishError(
            "files= attaches to the summary item, which only time-less variables make: add one "
            "or drop files=."
        )
    extras = _Extras(
        level or (contract.level if contract else "L2A-ARD"),
        dict(properties or {}),
        dict(asset_fields or {}),
        tuple(dict.fromkeys([*(contract.extension_urls() if contract else []), *extensions])),
        {
            k: v if isinstance(v, Attachment) else Attachment(Path(v), roles=("data",))
            for k, v in (files or {}).items()
        },
        contract,
        require_valid,
    )
    with contextlib.nullcontext() if locked else collection_lock(root_json.parent, collection):
        if dest.exists() and not overwrite:
            raise PublishError(
                f"Collection folder {dest} exists: pass overwrite=True or choose another "
                "collection id."
            )
        try:
            _write(ds, dest, collection, gbox, sources, parameters, description, extras)
        except RasterioError as exc:
            raise PublishError(
                f"Reading a source raster failed while writing {collection!r} ({exc}): a COG is "
                "probably corrupt or truncated (GDAL names it in the log above). Re-download "
                "that item, or leave it out of the search; nothing was written."
            ) from exc
        _link_into_root(root_json, collection)
    written = pystac.Collection.from_file(str(dest / "collection.json"))
    if has_listeners():  # availability notices (mus_lab.catalog._events)
        announce_new_items(list(written.get_items()), source=str(root_json.parent))
    return written


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
    files: dict[str, Attachment]
    contract: ProductContract | None = None
    require_valid: bool = True


def _attach_files(item: pystac.Item, folder: Path, files: Mapping[str, Attachment]) -> None:
    for key, att in files.items():
        src = Path(att.path)
        if not src.is_file():
            raise PublishError(f"files[{key!r}] = {src} is not a file: nothing written.")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, folder / src.name)
        item.add_asset(
            key,
            pystac.Asset(
                href=f"./{src.name}",
                title=att.title,
                media_type=att.media_type or _FILE_TYPES.get(src.suffix.lower()),
                roles=list(att.roles),
            ),
        )


def _band_info(da: xr.DataArray, nodata: float | int | None) -> dict[str, Any]:
    info: dict[str, Any] = {"data_type": str(da.dtype)}
    if nodata is not None:
        info["nodata"] = "nan" if isinstance(nodata, float) and math.isnan(nodata) else nodata
    unit = da.attrs.get("units") or da.attrs.get("unit")
    if unit:
        info["unit"] = str(unit)
    return info


def _groups(
    ds: xr.Dataset, collection: str
) -> list[tuple[str, dt.datetime, list[str], xr.Dataset]]:
    dynamic = [str(n) for n, v in ds.data_vars.items() if "time" in v.dims]
    static = [str(n) for n, v in ds.data_vars.items() if "time" not in v.dims]
    groups: list[tuple[str, dt.datetime, list[str], xr.Dataset]] = []
    if "time" in ds.dims and dynamic:
        for t in ds.time.values:
            when = pd.Timestamp(t).to_pydatetime().replace(tzinfo=dt.UTC)
            groups.append((f"{collection}-{when:%Y%m%d}", when, dynamic, ds[dynamic].sel(time=t)))
    if static:
        when = (
            pd.Timestamp(ds.time.values.max()).to_pydatetime().replace(tzinfo=dt.UTC)
            if "time" in ds.dims
            else dt.datetime.now(dt.UTC)
        )
        groups.append((f"{collection}-summary", when, static, ds[static]))
    return groups


def _write(
    ds: xr.Dataset,
    dest: Path,
    collection: str,
    gbox: Any,
    sources: Iterable[Any],
    parameters: Mapping[str, Any] | None,
    description: str,
    extras: _Extras,
) -> None:
    from mus_lab import __version__

    footprint = gbox.extent.to_crs("EPSG:4326")
    geometry = footprint.json
    bbox = list(footprint.boundingbox)
    epsg = gbox.crs.epsg if gbox.crs is not None else None
    params = dict(parameters or {})
    params.update({k: v for k, v in ds.attrs.items() if isinstance(v, str | int | float)})
    links = _source_links(sources)
    with atomic_folder(dest) as tmp:
        items: list[pystac.Item] = []
        specs: list[CogSpec] = []
        valid_paths: list[Path] = []
        for item_id, when, names, sub in _groups(ds, collection):
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
                    "processing:lineage": description or f"mus_lab -> {collection}",
                    "mus_lab:parameters": params,
                    **extras.properties,
                },
                collection=collection,
                stac_extensions=[
                    EXTENSIONS["proj"],
                    EXTENSIONS["processing"],
                    EXTENSIONS["raster"],
                    EXTENSIONS["file"],
                    *extras.extensions,
                ],
            )
            item.stac_extensions = list(dict.fromkeys(item.stac_extensions))
            for link in links:
                item.add_link(link.clone())
            for name in names:
                da = sub[name]
                if da.dtype == bool:
                    da = da.astype("uint8")
                nodata = _nodata_for(sub[name], extras.contract)
                path = tmp / item_id / f"{name}.tif"
                extra = [d for d in da.dims if d not in ("y", "x")]
                if len(extra) > 1:
                    raise ProductContractError(
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
                info = _band_info(da, nodata)
                title = None
                if extras.contract is not None and name in extras.contract.names:
                    title = extras.contract.variable(name).title
                item.add_asset(
                    name,
                    pystac.Asset(
                        href=f"./{name}.tif",
                        title=title,
                        media_type=pystac.MediaType.COG,
                        roles=["data"],
                        extra_fields={
                            "raster:bands": [{**info, "description": b} for b in band_names]
                            if band_names
                            else [info],
                            **dict(extras.asset_fields.get(name, {})),
                        },
                    ),
                )
            if item_id == f"{collection}-summary" and extras.files:
                _attach_files(item, tmp / item_id, extras.files)
            items.append(item)
        # One streaming pass computes every asset (shared upstream work done once).
        write_cogs(specs)
        if extras.require_valid and valid_paths and not any(_any_nonzero(p) for p in valid_paths):
            from mus_lab.errors import ARDError

            raise ARDError(
                "No valid pixel in any date (all cloudy, masked or no data): nothing written. "
                "Widen the dates, relax the invalid classes or pick another area."
            )
        for item in items:
            for asset in item.assets.values():
                local = tmp / item.id / asset.href.removeprefix("./")
                asset.extra_fields["file:size"] = local.stat().st_size
                asset.extra_fields["file:checksum"] = checksum(local)
        coll = pystac.Collection(
            collection,
            description or f"Product written by mus_lab {__version__}",
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
        # Asset hrefs are relative to each item's own folder, where write_cogs put them.
        coll.save(pystac.CatalogType.SELF_CONTAINED, dest_href=str(tmp))


def _link_into_root(root_json: Path, collection: str) -> None:
    with root_lock(root_json.parent):
        doc = json.loads(root_json.read_text())
        href = f"./{collection}/collection.json"
        links = [
            lk
            for lk in doc.get("links", [])
            if not (lk.get("rel") == "child" and lk.get("href") == href)
        ]
        links.append(
            {"rel": "child", "href": href, "type": "application/json", "title": collection}
        )
        doc["links"] = links
        write_json(doc, root_json)
