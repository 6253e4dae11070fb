"""Open written products: check a STAC item against its contract, open its rasters lazily.

One GeoTIFF opener for every stage and the dashboards (:func:`open_raster`), and one check of an
item against :mod:`mus_lab.contracts` (:func:`check_item`) whose errors name the collection, the
item and the field, so that a product written by another version, copied by hand or damaged is
refused with a message instead of failing deep inside a stage.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pystac
import xarray as xr

from mus_lab._settings import resolve_chunks
from mus_lab.contracts import ProductContract
from mus_lab.errors import ProductContractError, PublishError

__all__ = ["check_item", "latest_item", "open_asset", "open_raster", "verify_checksums"]


def _where(item: pystac.Item) -> str:
    return f"collection {item.collection_id!r}, item {item.id!r}"


def check_item(item: pystac.Item, contract: ProductContract) -> None:
    """Refuse an item that does not hold what its product contract promises.

    Checks that every required variable has its asset, that each raster asset's
    ``raster:bands`` ``data_type`` and ``nodata`` are the contract's, that class maps carry a
    ``classification:classes`` legend, that the metadata assets are there, and that each asset
    has ``file:checksum``.

    Parameters
    ----------
    item
        The STAC item read from a catalog.
    contract
        Its product contract (e.g. :data:`mus_lab.contracts.LANDCOVER`).

    Returns
    -------
    None

    Raises
    ------
    ProductContractError
        The first mismatch, naming the collection, the item and the field.

    Examples
    --------
    >>> from mus_lab.contracts import FLOOD_EXTENT
    >>> item = pystac.Item("flood-extent-20220301", None, None, "2022-03-01T00:00:00Z", {},
    ...                    collection="flood-extent")
    >>> check_item(item, FLOOD_EXTENT)
    Traceback (most recent call last):
    ...
    mus_lab.errors.ProductContractError: collection 'flood-extent', item 'flood-extent-20220301': asset 'water' is missing (a flood-extent product has ['water', 'flood', 'likelihood']). Rewrite the product with mus_lab.publish, or read the collection with the reader of its kind.
    """
    for name in contract.required:
        if name not in item.assets:
            raise ProductContractError(
                f"{_where(item)}: asset {name!r} is missing (a {contract.kind} product has "
                f"{list(contract.required)}). Rewrite the product with mus_lab.publish, or read "
                "the collection with the reader of its kind."
            )
    for key, asset in item.assets.items():
        if key in contract.names:
            var = contract.variable(key)
            bands = asset.extra_fields.get("raster:bands") or [{}]
            dtype = bands[0].get("data_type")
            if dtype != var.dtype:
                raise ProductContractError(
                    f"{_where(item)}: asset {key!r} has raster:bands data_type {dtype!r}, the "
                    f"{contract.kind} contract says {var.dtype!r}. The product was written by "
                    "another tool or version: rewrite it with mus_lab.publish."
                )
            nodata = bands[0].get("nodata")
            if not var.nodata_matches(nodata):
                raise ProductContractError(
                    f"{_where(item)}: asset {key!r} has nodata {nodata!r}, the {contract.kind} "
                    f"contract says {var.nodata!r}: rewrite it with mus_lab.publish."
                )
            if var.legend is not None and not asset.extra_fields.get("classification:classes"):
                raise ProductContractError(
                    f"{_where(item)}: asset {key!r} has no legend (classification:classes): "
                    "its class codes cannot be named; rewrite it with mus_lab.publish."
                )
        if "file:checksum" not in asset.extra_fields:
            raise ProductContractError(
                f"{_where(item)}: asset {key!r} has no file:checksum: it was not written by "
                "mus_lab.publish (or by an older version); rewrite it."
            )
    if not contract.per_date:
        for key in contract.metadata_assets:
            if key not in item.assets:
                raise ProductContractError(
                    f"{_where(item)}: metadata asset {key!r} is missing (a {contract.kind} "
                    f"product carries {list(contract.metadata_assets)})."
                )


def verify_checksums(item: pystac.Item) -> None:
    """Recompute the ``file:checksum`` of every asset of a local item and compare.

    Parameters
    ----------
    item
        An item with local asset hrefs.

    Returns
    -------
    None

    Raises
    ------
    PublishError
        A file is missing, or its checksum differs (damaged or replaced).
    """
    from mus_lab.publish._writer import checksum

    for key, asset in item.assets.items():
        want = asset.extra_fields.get("file:checksum")
        if want is None:
            continue
        path = Path(asset.get_absolute_href() or "")
        if not path.is_file():
            raise PublishError(f"{_where(item)}: asset {key!r} file {path} is missing.")
        if checksum(path) != want:
            raise PublishError(
                f"{_where(item)}: asset {key!r} ({path}) does not match its file:checksum: "
                "the file was damaged or replaced; rewrite the product."
            )


def latest_item(items: Sequence[pystac.Item], *, summary: bool = True) -> pystac.Item:
    """The item to read from a product search: its ``summary`` item, the latest if several.

    Parameters
    ----------
    items
        Items of one collection.
    summary
        Prefer ``*-summary`` items (products with one summary item).

    Returns
    -------
    pystac.Item

    Raises
    ------
    PublishError
        ``items`` is empty.
    """
    if not items:
        raise PublishError("No item to read: the search found nothing.")
    ranked = sorted(
        items, key=lambda it: (summary and it.id.endswith("-summary"), str(it.datetime or ""))
    )
    return ranked[-1]


def open_raster(
    path: str | os.PathLike[str],
    *,
    chunks: int | None = None,
    bands: str | None = None,
    what: str = "raster",
) -> xr.DataArray:
    """Open a GeoTIFF lazily on its grid: one band as ``(y, x)``, several as ``(band, y, x)``.

    Float no-data values become NaN; integer rasters keep their codes (the no-data value is in
    ``attrs["nodata"]``). With ``bands="class"``, a multi-band file whose band descriptions are
    class codes (a probability cube) gets a ``class`` dimension with those codes.

    Parameters
    ----------
    path
        Local path or GDAL-readable URL.
    chunks
        Spatial chunk size (default: the setting ``chunk_size``).
    bands
        ``"class"`` for a probability cube, or ``None``.
    what
        What the file is, for error messages (``"population"``, ``"land cover"``...).

    Returns
    -------
    xarray.DataArray
        Lazy, with an odc-geo grid (``.odc.geobox``).

    Raises
    ------
    PublishError
        The file cannot be read, or ``bands="class"`` and its band descriptions are not codes.

    Examples
    --------
    >>> import glob
    >>> dem = sorted(glob.glob(str(tiny.root / "catalog" / "dem" / "*" / "*.tif")))[0]
    >>> open_raster(dem).dims
    ('y', 'x')
    """
    import odc.geo.xr  # noqa: F401  (registers .odc)
    import rasterio
    import rioxarray

    size = resolve_chunks(chunks)
    p = os.fspath(path)
    try:
        with rasterio.open(p) as src:
            count, dtype, descriptions, nodata = (
                src.count,
                src.dtypes[0],
                src.descriptions,
                src.nodata,
            )
        da = rioxarray.open_rasterio(p, chunks={"band": -1, "y": size, "x": size})
    except (OSError, rasterio.errors.RasterioError) as exc:
        raise PublishError(
            f"Cannot read the {what} {p} as a GeoTIFF ({exc}): check the path, or re-download it."
        ) from exc
    assert isinstance(da, xr.DataArray)
    crs = da.rio.crs
    da = da.drop_vars([c for c in da.coords if c not in ("band", "y", "x")])
    da.attrs = {} if nodata is None else {"nodata": nodata}
    da.encoding = {}
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    if floating and nodata is not None and not np.isnan(nodata):
        da = da.where(da != nodata)
    if count == 1:
        out = da.squeeze("band", drop=True)
    elif bands == "class":
        try:
            codes = [int(str(d)) for d in descriptions]
        except (TypeError, ValueError) as exc:
            raise PublishError(
                f"{p} has {count} bands but their descriptions {list(descriptions)} are not "
                "class codes: a probability cube needs one band per class, described by its code."
            ) from exc
        out = da.rename(band="class").assign_coords({"class": codes})
        if not floating:
            out = out.astype("float32")
    else:
        out = da
    out.name = Path(p).stem
    return out.odc.assign_crs(crs) if crs is not None else out


def open_asset(
    item: pystac.Item, key: str, *, chunks: int | None = None, bands: str | None = None
) -> xr.DataArray:
    """Open one raster asset of an item lazily (see :func:`open_raster`).

    Parameters
    ----------
    item
        A STAC item.
    key
        Asset key.
    chunks
        Spatial chunk size (default: the setting).
    bands
        ``"class"`` for a probability cube.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    ProductContractError
        The item has no such asset.
    PublishError
        The file cannot be read.
    """
    asset = item.assets.get(key)
    if asset is None:
        raise ProductContractError(f"{_where(item)}: asset {key!r} is missing.")
    return open_raster(str(asset.get_absolute_href()), chunks=chunks, bands=bands, what=key)
