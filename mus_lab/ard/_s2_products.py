"""Sentinel-2 L2A products as delivered in files: ESA/CDSE SAFE (zip or folder) and THEIA MAJA.

:func:`s2_product_items` turns each product into a STAC item whose assets point into the product
(``/vsizip/`` paths inside a zip: nothing is unpacked to disk) and whose ``raster:bands`` carry the
scale and offset read from the product's own metadata, so that :func:`mus_lab.cube.load` gives the
same lazy cube as for catalog items, and :func:`mus_lab.ard.prepare_s2` the same ARD.

- **SAFE** (``S2?_MSIL2A_*.SAFE``, zipped or not): JPEG2000 bands in
  ``GRANULE/*/IMG_DATA/R10m|R20m|R60m`` as listed by ``MTD_MSIL2A.xml``; reflectance =
  (DN + ``BOA_ADD_OFFSET``) / ``BOA_QUANTIFICATION_VALUE``; the mask is ``SCL`` (R20m).
- **MAJA / THEIA** (``SENTINEL2?_<date>_L2A_T<tile>_C_V<version>``): ``*_FRE_B*.tif`` flat
  reflectance, reflectance = DN / ``REFLECTANCE_QUANTIFICATION_VALUE``, no data = the
  ``nodata`` special value (-10000), all from ``*_MTD_ALL.xml``; masks ``MASKS/*_CLM_R1.tif``,
  ``*_MG2_R1.tif``, ``*_SAT_R1.tif``, ``*_EDG_R1.tif`` (THEIA bit order, see
  :func:`mus_lab.ard.maja_quality`).

Nothing is guessed: a product whose metadata lacks the quantification or (baseline >= 04.00) the
offsets, or lacks a band file, is refused with the name of what is missing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pystac
import rasterio
from odc.geo.geobox import GeoBox

from mus_lab.ard._s2_metadata import parse_l2a_metadata
from mus_lab.errors import ARDError

__all__ = ["MAJA_MASKS", "s2_product_item", "s2_product_items"]

#: Canonical name -> Sentinel-2 physical band (SAFE names; MAJA drops the leading zero).
_PHYSICAL = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "swir16": "B11", "swir22": "B12",
}  # fmt: skip
_NATIVE_RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B08": 10, "B09": 60}  # others 20 m
#: MAJA mask asset -> file suffix in ``MASKS/`` (10 m masks; CLM and EDG are required).
MAJA_MASKS: dict[str, str] = {"clm": "CLM_R1", "mg2": "MG2_R1", "sat": "SAT_R1", "edg": "EDG_R1"}
_MAJA_NAME = re.compile(r"SENTINEL2([A-DX])_(\d{8})-(\d{6})-(\d{3})_L2A_T(\w{5})_\w_V\d+-\d+")


@dataclass(frozen=True)
class _Files:
    """A product's files, in a zip or a folder, by their path relative to the zip/folder root."""

    root: Path
    names: tuple[str, ...]
    zipped: bool

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> _Files:
        root = Path(path).expanduser().resolve()
        if root.is_dir():
            names = tuple(sorted(p.relative_to(root).as_posix() for p in root.rglob("*")))
            return cls(root, names, zipped=False)
        if root.is_file() and zipfile.is_zipfile(root):
            with zipfile.ZipFile(root) as zf:
                return cls(root, tuple(sorted(zf.namelist())), zipped=True)
        raise ARDError(
            f"{path} is neither a product folder nor a zip: give a Sentinel-2 L2A .SAFE (zip or "
            "folder) or a THEIA MAJA product folder."
        )

    def find(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [n for n in self.names if rx.search(n)]

    def read(self, name: str) -> bytes:
        if self.zipped:
            with zipfile.ZipFile(self.root) as zf:
                return zf.read(name)
        return (self.root / name).read_bytes()

    def href(self, name: str) -> str:
        return f"/vsizip/{self.root.as_posix()}/{name}" if self.zipped else str(self.root / name)


def _grid_fields(href: str) -> dict[str, Any]:
    try:
        with rasterio.open(href) as src:
            if src.crs is None or src.crs.to_epsg() is None:
                raise ARDError(f"{href} has no EPSG projection: the product is damaged.")
            return {
                "proj:epsg": int(src.crs.to_epsg()),
                "proj:transform": list(src.transform)[:6],
                "proj:shape": [src.height, src.width],
                "dtype": str(src.dtypes[0]),
            }
    except rasterio.errors.RasterioIOError as exc:
        raise ARDError(
            f"Cannot read {href}: {exc}. The product file is damaged or absent."
        ) from exc


def _asset(href: str, media: str, grid: dict[str, Any], **raster: Any) -> pystac.Asset:
    fields = {k: v for k, v in grid.items() if k != "dtype"}
    fields["raster:bands"] = [{"data_type": grid["dtype"], **raster}]
    return pystac.Asset(href, media_type=media, roles=["data"], extra_fields=fields)


def _item(
    item_id: str,
    when: dt.datetime,
    assets: dict[str, pystac.Asset],
    properties: dict[str, Any],
    collection: str,
) -> pystac.Item:
    first = next(iter(assets.values())).extra_fields
    crs = f"EPSG:{first['proj:epsg']}"
    h, w = first["proj:shape"]
    from affine import Affine

    gbox = GeoBox((h, w), Affine(*first["proj:transform"]), crs)
    extent = gbox.extent.to_crs("EPSG:4326")
    item = pystac.Item(
        item_id,
        extent.json,
        list(extent.boundingbox),
        when,
        {**properties, "proj:epsg": first["proj:epsg"]},
        collection=collection,
    )
    for key, asset in assets.items():
        item.add_asset(key, asset)
    return item


def _canonical(bands: Sequence[str]) -> list[str]:
    unknown = [b for b in bands if b not in _PHYSICAL]
    if unknown:
        raise ARDError(f"Unknown band(s) {unknown}: choose among {sorted(_PHYSICAL)}.")
    return list(bands)


def _safe_item(files: _Files, bands: Sequence[str]) -> pystac.Item:
    mtds = [n for n in files.find(r"(^|/)MTD_MSIL2A\.xml$") if n.count("/") <= 1]
    if not mtds:
        raise ARDError(
            f"{files.root} has no MTD_MSIL2A.xml: it is not a Sentinel-2 L2A SAFE (an L1C product "
            "needs Sen2Cor first), or its metadata is missing; download the whole product."
        )
    mtd = mtds[0]
    top = str(PurePosixPath(mtd).parent) if "/" in mtd else ""
    prefix = f"{top}/" if top else ""
    tl = [n for n in files.find(r"GRANULE/[^/]+/MTD_TL\.xml$") if n.startswith(prefix)]
    where = f"{files.root}!{mtd}" if files.zipped else str(files.root / mtd)
    try:
        root = ET.fromstring(files.read(mtd))
        tile = ET.fromstring(files.read(tl[0])) if tl else None
    except ET.ParseError as exc:
        raise ARDError(f"Cannot parse {where}: {exc}. The product metadata is damaged.") from exc
    meta = parse_l2a_metadata(root, tile, where=where)
    listed = [(el.text or "").strip() for el in root.iter("IMAGE_FILE")]

    def band_file(physical: str, res: int) -> str:
        suffix = f"_{physical}_{res}m"
        stem = next((s for s in listed if s.endswith(suffix) and f"/R{res}m/" in s), None)
        if stem is None:  # older layouts: find the file itself
            found = files.find(rf"GRANULE/[^/]+/IMG_DATA/R{res}m/[^/]*{suffix}\.jp2$")
            stem = found[0][len(prefix) : -4] if found else None
        name = f"{prefix}{stem}.jp2" if stem else None
        if name is None or name not in files.names:
            raise ARDError(
                f"{files.root} lacks the {physical} band at {res} m (GRANULE/*/IMG_DATA/R{res}m/"
                f"*{suffix}.jp2): the product is incomplete; download it again."
            )
        return name

    assets: dict[str, pystac.Asset] = {}
    for band in _canonical(bands):
        physical = _PHYSICAL[band]
        if physical not in meta.boa_add_offset:
            raise ARDError(
                f"{where} gives no BOA_ADD_OFFSET for {physical}: the offset is not guessed; "
                "use complete product metadata."
            )
        scale, offset = meta.scale_offset(physical)
        href = files.href(band_file(physical, _NATIVE_RES.get(physical, 20)))
        assets[band] = _asset(
            href, "image/jp2", _grid_fields(href), nodata=meta.nodata, scale=scale, offset=offset
        )
    href = files.href(band_file("SCL", 20))
    assets["scl"] = _asset(href, "image/jp2", _grid_fields(href), nodata=0)
    when = pystac.utils.str_to_datetime(meta.start_time) if meta.start_time else None
    if when is None:
        raise ARDError(f"{where} has no PRODUCT_START_TIME: the product metadata is incomplete.")
    props = {
        "platform": meta.spacecraft.lower(),
        "constellation": "sentinel-2",
        "s2:processing_baseline": meta.processing_baseline,
        "s2:product_uri": meta.product_uri,
    }
    return _item(meta.product_uri.removesuffix(".SAFE"), when, assets, props, "sentinel-2-l2a")


def _maja_text(root: ET.Element, tag: str, name: str | None = None) -> str | None:
    for el in root.iter(tag):
        if name is None or el.attrib.get("name") == name:
            return (el.text or "").strip() or None
    return None


def _maja_item(files: _Files, bands: Sequence[str]) -> pystac.Item:
    mtds = files.find(r"(^|/)[^/]*_MTD_ALL\.xml$")
    if not mtds:
        raise ARDError(
            f"{files.root} has no *_MTD_ALL.xml: the MAJA product metadata (quantification value "
            "and nodata) is missing and is not guessed; download the whole THEIA product."
        )
    mtd = min(mtds, key=lambda n: n.count("/"))
    where = f"{files.root}!{mtd}" if files.zipped else str(files.root / mtd)
    try:
        root = ET.fromstring(files.read(mtd))
    except ET.ParseError as exc:
        raise ARDError(f"Cannot parse {where}: {exc}. The product metadata is damaged.") from exc
    quant = _maja_text(root, "REFLECTANCE_QUANTIFICATION_VALUE")
    nodata = _maja_text(root, "SPECIAL_VALUE", "nodata")
    missing = [
        what
        for what, v in (
            ("REFLECTANCE_QUANTIFICATION_VALUE", quant),
            ("SPECIAL_VALUE nodata", nodata),
        )
        if v is None
    ]
    if missing:
        raise ARDError(
            f"{where} lacks {missing}: the MAJA metadata is incomplete; it is not guessed."
        )
    product = PurePosixPath(mtd).name.removesuffix("_MTD_ALL.xml")
    prefix = str(PurePosixPath(mtd).parent)
    prefix = "" if prefix == "." else f"{prefix}/"
    name = _MAJA_NAME.search(product)
    if name is None:
        raise ARDError(
            f"{product!r} is not a THEIA MAJA L2A name (SENTINEL2A_YYYYMMDD-HHMMSS-mmm_L2A_T<tile>_"
            "C_V<x-y>): give the product folder as delivered."
        )
    sat, day, clock, ms, tile = name.groups()
    when = dt.datetime.strptime(f"{day}{clock}{ms}", "%Y%m%d%H%M%S%f").replace(tzinfo=dt.UTC)

    def need(file: str, what: str) -> str:
        if file not in files.names:
            raise ARDError(f"{files.root} lacks {file} ({what}): the MAJA product is incomplete.")
        return file

    assets: dict[str, pystac.Asset] = {}
    for band in _canonical(bands):
        physical = _PHYSICAL[band].replace("B0", "B")
        href = files.href(need(f"{prefix}{product}_FRE_{physical}.tif", f"{band} reflectance"))
        assets[band] = _asset(
            href,
            "image/tiff; application=geotiff",
            _grid_fields(href),
            nodata=float(nodata),  # type: ignore[arg-type]
            scale=1.0 / float(quant),  # type: ignore[arg-type]
            offset=0.0,
        )
    for key, suffix in MAJA_MASKS.items():
        file = f"{prefix}MASKS/{product}_{suffix}.tif"
        if file not in files.names and key in ("mg2", "sat"):
            continue
        href = files.href(need(file, f"{key.upper()} mask"))
        assets[key] = _asset(href, "image/tiff; application=geotiff", _grid_fields(href))
    props = {
        "platform": f"sentinel-2{sat.lower()}" if sat != "X" else "sentinel-2",
        "constellation": "sentinel-2",
        "theia:product_id": product,
        "mgrs:tile": tile,
    }
    return _item(product, when, assets, props, "sentinel-2-l2a-theia")


def s2_product_item(
    path: str | os.PathLike[str], *, bands: Sequence[str] | None = None
) -> pystac.Item:
    """A STAC item for one Sentinel-2 L2A product file: a SAFE (zip or folder) or a MAJA folder.

    Assets point into the product (``/vsizip/`` inside a zip, nothing is unpacked); each
    band's ``raster:bands`` carries the scale and offset of the product's metadata, so
    :func:`mus_lab.cube.load` and :func:`mus_lab.ard.prepare_s2` treat it like a catalog item.

    Parameters
    ----------
    path : str or os.PathLike
        A ``*.SAFE`` folder, a ``*.SAFE.zip`` / ``*.zip`` (CDSE), or a THEIA MAJA product folder
        (or its zip).
    bands : sequence of str, optional
        Canonical bands to expose (default the ten of :data:`mus_lab.ard.S2_BANDS`).

    Returns
    -------
    pystac.Item
        Collection ``sentinel-2-l2a`` (SAFE, with ``scl``) or ``sentinel-2-l2a-theia`` (MAJA,
        with ``clm``, ``edg`` and, when present, ``mg2`` and ``sat``).

    Raises
    ------
    ARDError
        Not a product, missing or incomplete metadata (no quantification, no offset for a
        baseline >= 04.00 product, no nodata for MAJA), a band or mask file missing.

    Examples
    --------
    >>> import tempfile
    >>> s2_product_item(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    mus_lab.errors.ARDError: ... has no *_MTD_ALL.xml: the MAJA product metadata ...
    """
    from mus_lab.ard._s2 import S2_BANDS

    files = _Files.of(path)
    wanted = tuple(bands) if bands is not None else S2_BANDS
    if files.find(r"(^|/)MTD_MSIL2A\.xml$"):
        return _safe_item(files, wanted)
    if files.find(r"(^|/)MTD_MSIL1C\.xml$"):
        raise ARDError(
            f"{path} is a Sentinel-2 L1C product: run Sen2Cor (or MAJA) to make L2A first."
        )
    return _maja_item(files, wanted)


def s2_product_items(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    bands: Sequence[str] | None = None,
) -> list[pystac.Item]:
    """:func:`s2_product_item` for each product, in time order.

    Parameters
    ----------
    paths : path or sequence of paths
        SAFE zips or folders, MAJA folders.
    bands : sequence of str, optional
        Canonical bands to expose (default :data:`mus_lab.ard.S2_BANDS`).

    Returns
    -------
    list of pystac.Item
        One item per product, sorted by acquisition time.

    Raises
    ------
    ARDError
        As :func:`s2_product_item`, or no path given.

    Examples
    --------
    >>> s2_product_items([])
    Traceback (most recent call last):
    ...
    mus_lab.errors.ARDError: No product given: pass SAFE zips/folders or MAJA folders.
    """
    many = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not many:
        raise ARDError("No product given: pass SAFE zips/folders or MAJA folders.")
    items = [s2_product_item(p, bands=bands) for p in many]
    return sorted(items, key=lambda it: it.datetime or dt.datetime.min.replace(tzinfo=dt.UTC))


def is_product_path(items: Any) -> bool:
    """Whether ``items`` is a product path or a non-empty sequence of them."""
    if isinstance(items, str | os.PathLike):
        return True
    if isinstance(items, list | tuple) and items:
        return all(isinstance(p, str | os.PathLike) for p in items)
    return False
