"""WMS 1.3.0 and WCS 2.0.1 of the products: MapServer driven by a generated mapfile.

:func:`write_mapfile` reads a product catalog written by :mod:`mus_lab.publish` and writes a
MapServer mapfile: one layer per raster asset of every product collection, named
``COLLECTION.ASSET`` and grouped by collection (``QUERY_LAYERS=COLLECTION`` asks every
variable of a product at once).

- Class maps (assets with ``classification:classes``: land cover, fused class, flood
  extent, risk class) get one ``CLASS`` per legend entry, in the legend's colours
  (``color_hint``; the risk classes in :data:`mus_lab.contracts.RISK_COLOURS`).
- Scores get a colour ramp: confidence, margin, belief, plausibility from red to green;
  conflict, ignorance, entropy, frequency, hazard, risk from yellow to red; likelihood in
  blues (0-100 for the ``uint8`` scores, 0-1 for the ``float32`` ones).
- Other rasters (ARD bands, counts, flags) are drawn in grey, stretched.
- Collections with several dates (flood extent, ARD) are served through a tile index: WMS
  ``TIME`` (``wms_timeextent``, the latest date by default) and WCS 2.0 temporal subsets.
- ``GetFeatureInfo`` (GML or text) returns, per layer, the pixel value(s) and the class
  name; on a collection's group it returns the class with its code, the confidence and the
  belief/plausibility/conflict/ignorance where the product has them.
- ``GetCoverage`` answers GeoTIFF on the product's own grid (a subset in the product's
  coordinates cuts whole pixels: what GDAL's WCS driver reads equals the product).

:class:`OwsServer` serves the mapfile over HTTP (``/ows``) on 127.0.0.1 with a Starlette
front (:func:`create_app`, run by uvicorn in a subprocess) that runs Debian's ``mapserv``
CGI for each request. The mapfile is fixed by the server and never taken from the request:
``map=`` (and every ``map.*``/``map_*`` parameter), ``SLD``/``SLD_BODY`` (which would make
MapServer fetch a URL), CGI modes and any parameter holding ``..``, a NUL or a control
character are refused with 400, as is a request naming no ``SERVICE=WMS|WCS``. Reads are
public (there is nothing to write).

From a shell: ``python -m mus_lab.services.ows start|stop|status DIR --catalog PATH``
(``make services`` calls it after the STAC API). MapServer comes from Debian
(``make mapserver``: ``cgi-mapserver``, ``mapserver-bin``); Starlette and uvicorn are the
``serve`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from mus_lab.errors import ServiceError
from mus_lab.services._life import Server, child_env, command

__all__ = [
    "MAPFILE_ENV",
    "MAPSERV_ENV",
    "OwsServer",
    "RequestCheck",
    "create_app",
    "find_mapserv",
    "write_mapfile",
]

MAPFILE_ENV = "MUS_LAB_OWS_MAPFILE"
#: Beside the mapfile: ``times`` (coverage id -> {date: coverage id of that date}, for WCS
#: time subsets), ``formats`` (coverage id -> its GeoTIFF output format) and ``wms_times``
#: (WMS layer or group -> its dates).
COVERAGES_FILE = "ows-coverages.json"
MAPSERV_ENV = "MUS_LAB_MAPSERV"
_INSTALL_HINT = "install Debian's MapServer: make mapserver (apt-get install cgi-mapserver)"

# Colour ramps (from, to) by variable name, and the value range of each data type.
_GOOD = ("#d7191c", "#1a9641")
_BAD = ("#ffffcc", "#bd0026")
_WET = ("#f7fbff", "#08306b")
_RAMPS = {
    "confidence": _GOOD,
    "margin": _GOOD,
    "belief": _GOOD,
    "plausibility": _GOOD,
    "conflict": _BAD,
    "ignorance": _BAD,
    "entropy": _BAD,
    "frequency": _BAD,
    "hazard": _BAD,
    "risk": _BAD,
    "likelihood": _WET,
}
_BINARY = {0: "F0F0F0", 1: "1F78B4"}
_IMAGEMODES = {
    "uint8": "BYTE",
    "int8": "INT16",
    "uint16": "INT16",
    "int16": "INT16",
}

#: What the service's command line holds (a recycled pid is never signalled).
_MARKER = b"mus_lab.services.ows:_app_from_env"


# -- the mapfile -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Raster:
    """One raster asset of one item."""

    path: Path
    datetime: str
    epsg: int
    transform: tuple[float, ...]
    shape: tuple[int, int]
    bbox: tuple[float, float, float, float]
    dtype: str
    nodata: Any
    bands: int
    classes: tuple[Mapping[str, Any], ...]
    title: str


def _q(text: object) -> str:
    """A mapfile string (double quotes; quotes and backslashes escaped)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _iso(value: Any) -> str:
    return str(value).replace("+00:00", "Z")


def _rasters(item: Any) -> dict[str, _Raster]:
    """The item's raster assets (GeoTIFFs with a known grid) by asset key."""
    props = item.properties
    epsg = props.get("proj:epsg")
    if epsg is None and str(props.get("proj:code", "")).upper().startswith("EPSG:"):
        epsg = int(str(props["proj:code"]).split(":")[1])
    out: dict[str, _Raster] = {}
    for key, asset in item.assets.items():
        media = str(asset.media_type or "")
        if "tiff" not in media:
            continue
        a_epsg = asset.extra_fields.get("proj:epsg", epsg)
        transform = asset.extra_fields.get("proj:transform", props.get("proj:transform"))
        shape = asset.extra_fields.get("proj:shape", props.get("proj:shape"))
        if a_epsg is None or transform is None or shape is None:
            continue
        bands = asset.extra_fields.get("raster:bands") or [{}]
        dt = item.datetime or item.common_metadata.end_datetime
        a, _, c, _, e, f = (float(v) for v in transform[:6])
        ny, nx = int(shape[0]), int(shape[1])
        xs, ys = (c, c + a * nx), (f, f + e * ny)
        out[key] = _Raster(
            path=Path(asset.get_absolute_href() or "").absolute(),
            datetime=dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else "",
            epsg=int(a_epsg),
            transform=tuple(float(v) for v in transform[:6]),
            shape=(ny, nx),
            bbox=(min(xs), min(ys), max(xs), max(ys)),
            dtype=str(bands[0].get("data_type", "float32")),
            nodata=bands[0].get("nodata"),
            bands=len(bands),
            classes=tuple(asset.extra_fields.get("classification:classes") or ()),
            title=str(asset.title or key),
        )
    return out


def _colours(name: str, classes: Sequence[Mapping[str, Any]], nodata: Any) -> dict[int, str]:
    """Class code -> ``RRGGBB`` for a class map (the legend's colours, else defaults)."""
    from mus_lab.contracts import RISK_COLOURS
    from mus_lab.publish import class_colors

    entries = {
        int(c["value"]): c
        for c in classes
        if not c.get("nodata") and (nodata is None or int(c["value"]) != _num(nodata))
    }
    names = {v: str(c.get("title") or c.get("name") or v) for v, c in entries.items()}
    if name == "risk_class":
        fallback = {i + 1: RISK_COLOURS[i].lstrip("#") for i in range(len(RISK_COLOURS))}
    elif set(entries) <= {0, 1}:
        fallback = dict(_BINARY)
    else:
        fallback = class_colors(names)
    return {
        v: str(c.get("color_hint") or fallback.get(v) or "7F7F7F").lstrip("#").upper()
        for v, c in entries.items()
    }


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _rgb(hexcode: str) -> str:
    h = hexcode.lstrip("#")
    return " ".join(str(int(h[i : i + 2], 16)) for i in (0, 2, 4))


def _classes_block(key: str, raster: _Raster) -> tuple[str, list[str]]:
    """(style name, CLASS blocks) of a layer."""
    if raster.classes and raster.bands == 1:
        colours = _colours(key, raster.classes, raster.nodata)
        names = {
            int(c["value"]): str(c.get("title") or c.get("name") or c["value"])
            for c in raster.classes
        }
        return "legend", [
            f'    CLASS\n      NAME {_q(names[v])}\n      GROUP "legend"\n'
            f"      EXPRESSION ([pixel] = {v})\n"
            f"      STYLE COLOR {_rgb(colour)} END\n    END"
            for v, colour in sorted(colours.items())
        ]
    ramp = _RAMPS.get(key)
    if ramp and raster.bands == 1:
        top = 100 if raster.dtype == "uint8" else 1
        return "ramp", [
            f'    CLASS\n      NAME {_q(key)}\n      GROUP "ramp"\n'
            f"      EXPRESSION ([pixel] >= 0 AND [pixel] <= {top})\n"
            f"      STYLE\n        COLORRANGE {_rgb(ramp[0])} {_rgb(ramp[1])}\n"
            f"        DATARANGE 0 {top}\n      END\n    END"
        ]
    return "", []


def _stamp(datetime: str) -> str:
    """``2022-04-01T00:00:00Z`` -> ``20220401T000000Z`` (a coverage id's date suffix)."""
    return re.sub(r"[-:]", "", datetime)


def _layer(
    collection: str,
    key: str,
    rasters: Sequence[_Raster],
    *,
    index: str | None,
    name: str | None = None,
) -> str:
    """The LAYER of one asset (one raster, or a tile index over several dates).

    ``name`` set: one date of a series, a coverage only (no group, no WMS).
    """
    last = rasters[-1]
    one_date = name is not None
    name = name or f"{collection}.{key}"
    style, classes = _classes_block(key, last)
    xmin, ymin, xmax, ymax = last.bbox
    for r in rasters:
        xmin, ymin = min(xmin, r.bbox[0]), min(ymin, r.bbox[1])
        xmax, ymax = max(xmax, r.bbox[2]), max(ymax, r.bbox[3])
    res = abs(last.transform[0])
    nx, ny = round((xmax - xmin) / res), round((ymax - ymin) / abs(last.transform[4]))
    mode = _IMAGEMODES.get(last.dtype, "FLOAT32")
    meta = {
        "ows_title": f"{collection}: {last.title}",
        "ows_abstract": f"{last.title} ({last.dtype}, nodata {last.nodata}) of {collection}",
        "ows_extent": f"{xmin} {ymin} {xmax} {ymax}",
        "ows_srs": f"EPSG:{last.epsg} EPSG:4326 EPSG:3857",
        "ows_include_items": "all",
        "gml_include_items": "all",
        "wcs_label": f"{collection}: {last.title}",
        "wcs_srs": f"EPSG:{last.epsg}",
        "wcs_extent": f"{xmin} {ymin} {xmax} {ymax}",
        "wcs_resolution": f"{res} {abs(last.transform[4])}",
        "wcs_size": f"{nx} {ny}",
        "wcs_bandcount": str(last.bands),
        "wcs_imagemode": mode,
        "wcs_native_format": "image/tiff",
        "wcs_formats": f"GEOTIFF_{mode}",
        "wcs_rangeset_name": key,
        "wcs_rangeset_label": last.title,
        "wcs_band_uom": "1",
        "wcs_band_names": " ".join(f"{key}_{i + 1}" for i in range(last.bands))
        if last.bands > 1
        else key,
    }
    if last.nodata is not None and not math.isnan(_num(last.nodata)):
        meta["wcs_rangeset_nullvalue"] = str(last.nodata)
        meta["wcs_nilvalues"] = str(last.nodata)
    if last.bands > 1 or one_date:  # probabilities per class, one date: coverages only
        meta["wms_enable_request"] = "!*"
    if one_date:
        meta["wcs_label"] = f"{collection}: {last.title}, {last.datetime}"
    lines = [
        "  LAYER",
        f"    NAME {_q(name)}",
        *([] if one_date else [f"    GROUP {_q(collection)}"]),
        "    TYPE RASTER",
        "    STATUS ON",
        '    TEMPLATE "query"',
        "    TOLERANCE 0",  # GetFeatureInfo: the pixel at the point, not its neighbours
        "    TOLERANCEUNITS PIXELS",
        f'    PROJECTION "init=epsg:{last.epsg}" END',
        f"    EXTENT {xmin} {ymin} {xmax} {ymax}",
    ]
    if index is None:
        lines.append(f"    DATA {_q(last.path)}")
    else:
        times = ",".join(r.datetime for r in rasters)
        lines += [f"    TILEINDEX {_q(index)}", f"    TILEITEM {_q(key)}"]
        meta.update(
            {
                "wms_timeextent": times,
                "wms_timeitem": "datetime",
                "wms_timedefault": rasters[-1].datetime,
                "wcs_timeposition": times,
                "wcs_timeitem": "datetime",
            }
        )
    if style:
        lines.append(f"    CLASSGROUP {_q(style)}")
    elif last.bands == 1:
        lines.append('    PROCESSING "SCALE=AUTO"')
    lines.append("    METADATA")
    lines += [f"      {_q(k)} {_q(v)}" for k, v in meta.items()]
    lines.append("    END")
    lines += classes
    lines.append("  END")
    return "\n".join(lines)


def _index(folder: Path, collection: str, items: Sequence[tuple[str, dict[str, _Raster]]]) -> str:
    """Write the tile index of a collection (GeoJSON: footprint, date, one path per asset)."""
    features = []
    for dt, rasters in items:
        r0 = next(iter(rasters.values()))
        x0, y0, x1, y1 = r0.bbox
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                },
                "properties": {"datetime": dt, **{k: str(r.path) for k, r in rasters.items()}},
            }
        )
    path = folder / f"{collection}.index.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    epsg = next(iter(items[0][1].values())).epsg
    return "\n".join(
        [
            "  LAYER",
            f"    NAME {_q(collection + '.index')}",
            "    TYPE POLYGON",
            "    STATUS OFF",
            "    CONNECTIONTYPE OGR",
            f"    CONNECTION {_q(path)}",
            f'    PROJECTION "init=epsg:{epsg}" END',
            "    METADATA",
            '      "ows_enable_request" "!*"',
            '      "wms_timeitem" "datetime"',
            "    END",
            "  END",
        ]
    )


def _collections(catalog: str | os.PathLike[str]) -> dict[str, list[Any]]:
    """Product items by collection id, each list sorted by date.

    Products are the items whose ``processing:level`` is a product contract's (what
    :mod:`mus_lab.publish` writes); the scenes a catalog also holds are left out.
    """
    import pystac

    from mus_lab.contracts import CONTRACTS
    from mus_lab.publish import catalog_json

    levels = {c.level for c in CONTRACTS.values()}
    root = pystac.Catalog.from_file(str(catalog_json(catalog)))
    out: dict[str, list[Any]] = {}
    for coll in root.get_all_collections():
        items = sorted(
            (it for it in coll.get_items() if it.properties.get("processing:level") in levels),
            key=lambda it: (_iso(it.datetime), it.id),
        )
        if items:
            out[coll.id] = items
    return out


def write_mapfile(
    catalog: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    url: str,
    title: str = "mus_lab products",
) -> Path:
    """Write the MapServer mapfile of a product catalog (and its tile indexes).

    Parameters
    ----------
    catalog
        Local catalog folder or ``catalog.json`` written by :mod:`mus_lab.publish`.
    folder
        Where to write ``ows.map`` and the tile indexes (``COLLECTION.index.geojson``).
    url
        The service's public address (``http://127.0.0.1:PORT/ows``), written as the
        online resource of the capabilities.
    title
        The services' title.

    Returns
    -------
    pathlib.Path
        The mapfile.

    Raises
    ------
    PublishError
        No catalog at ``catalog``.
    ServiceError
        The catalog holds no raster product.
    """
    out = Path(folder).absolute()
    out.mkdir(parents=True, exist_ok=True)
    layers: list[str] = []
    srs: set[int] = set()
    bounds: list[tuple[float, float, float, float]] = []
    times: dict[str, dict[str, str]] = {}
    formats: dict[str, str] = {}
    wms_times: dict[str, list[str]] = {}
    for coll_id, items in _collections(catalog).items():
        by_date: dict[str, dict[str, _Raster]] = {}
        for item in items:  # one item per date: the latest written wins
            rasters = _rasters(item)
            if rasters:
                by_date[next(iter(rasters.values())).datetime] = rasters
        if not by_date:
            continue
        dated = sorted(by_date.items())
        if len(dated) > 1:
            index: str | None = f"{coll_id}.index"
            layers.append(_index(out, coll_id, dated))
        else:
            index = None
        keys = list(dated[-1][1])
        for key in keys:
            series = [r[key] for _, r in dated if key in r]
            layers.append(_layer(coll_id, key, series, index=index if len(series) > 1 else None))
            srs.add(series[-1].epsg)
            mode = _IMAGEMODES.get(series[-1].dtype, "FLOAT32")
            formats[f"{coll_id}.{key}"] = f"GEOTIFF_{mode}"
            if len(series) > 1:
                per_date: dict[str, str] = {}
                for r in series:
                    per_date[r.datetime] = f"{coll_id}.{key}.{_stamp(r.datetime)}"
                    layers.append(_layer(coll_id, key, [r], index=None, name=per_date[r.datetime]))
                    formats[per_date[r.datetime]] = f"GEOTIFF_{mode}"
                times[f"{coll_id}.{key}"] = per_date
                wms_times[f"{coll_id}.{key}"] = [r.datetime for r in series]
                wms_times[coll_id] = sorted(set(wms_times.get(coll_id, [])) | set(per_date))
        bounds.append(_geographic(dated[-1][1][keys[0]]))
    if not layers:
        raise ServiceError(
            f"The catalog {os.fspath(catalog)} holds no raster product: publish products into "
            "it first (mus_lab.publish), then start the service."
        )
    west = min(b[0] for b in bounds)
    south = min(b[1] for b in bounds)
    east = max(b[2] for b in bounds)
    north = max(b[3] for b in bounds)
    all_srs = " ".join(["EPSG:4326", "EPSG:3857", *(f"EPSG:{e}" for e in sorted(srs))])
    web = {
        "ows_title": title,
        "ows_abstract": "Products of the lab (mus_lab.publish): WMS 1.3.0 and WCS 2.0.1",
        "ows_onlineresource": url.rstrip("?") + "?",
        "ows_srs": all_srs,
        "ows_enable_request": "*",
        "ows_include_items": "all",
        "wms_getfeatureinfo_formatlist": "application/vnd.ogc.gml,text/plain",
        "wms_feature_info_mime_type": "text/plain",
        "wcs_label": title,
        "wcs_description": "Coverages of the lab's products, GeoTIFF on their own grids",
    }
    outputformats = "\n".join(
        f'  OUTPUTFORMAT\n    NAME "GEOTIFF_{mode}"\n    DRIVER "GDAL/GTiff"\n'
        f'    MIMETYPE "image/tiff"\n    IMAGEMODE {mode}\n    EXTENSION "tif"\n'
        '    FORMATOPTION "COMPRESS=DEFLATE"\n  END'
        for mode in ("BYTE", "INT16", "FLOAT32")
    )
    text = "\n".join(
        [
            "MAP",
            f"  NAME {_q('mus_lab')}",
            "  STATUS ON",
            "  SIZE 256 256",
            "  MAXSIZE 4096",
            f"  EXTENT {west} {south} {east} {north}",
            "  UNITS DD",
            '  PROJECTION "init=epsg:4326" END',
            "  IMAGECOLOR 255 255 255",
            outputformats,
            '  OUTPUTFORMAT\n    NAME "png"\n    DRIVER "AGG/PNG"\n    MIMETYPE "image/png"\n'
            '    IMAGEMODE RGBA\n    TRANSPARENT ON\n    EXTENSION "png"\n  END',
            "  WEB",
            "    METADATA",
            *(f"      {_q(k)} {_q(v)}" for k, v in web.items()),
            "    END",
            "  END",
            *layers,
            "END",
            "",
        ]
    )
    sidecar = {"times": times, "formats": formats, "wms_times": wms_times}
    (out / COVERAGES_FILE).write_text(json.dumps(sidecar, indent=1), "utf-8")
    path = out / "ows.map"
    tmp = path.with_suffix(".map.tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)
    return path


def _geographic(raster: _Raster) -> tuple[float, float, float, float]:
    from pyproj import Transformer

    tr = Transformer.from_crs(raster.epsg, 4326, always_xy=True)
    x0, y0, x1, y1 = raster.bbox
    xs, ys = tr.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
    return min(xs), min(ys), max(xs), max(ys)


# -- the front -------------------------------------------------------------------------
def find_mapserv() -> str | None:
    """The ``mapserv`` CGI program (``$MUS_LAB_MAPSERV``, the PATH or Debian's cgi-bin).

    Returns
    -------
    str or None
        Its path, ``None`` when MapServer is not installed.
    """
    for candidate in (
        os.environ.get(MAPSERV_ENV),
        shutil.which("mapserv"),
        "/usr/lib/cgi-bin/mapserv",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


_FORBIDDEN_NAMES = re.compile(r"^(map([._\[].*)?|sld|sld_body|mode|qlayer|qformat|template)$", re.I)
_SERVICES = frozenset({"WMS", "WCS"})


class RequestCheck:
    """What a request may ask of MapServer: the OGC parameters, nothing about files.

    Examples
    --------
    >>> check = RequestCheck()
    >>> check.refusal("SERVICE=WMS&REQUEST=GetCapabilities") is None
    True
    >>> check.refusal("SERVICE=WMS&REQUEST=GetCapabilities&map=/etc/passwd")
    "The parameter 'map' is not accepted: the server's mapfile is fixed."
    >>> check.refusal("SERVICE=WCS&COVERAGEID=..%2F..%2Fetc%2Fpasswd")
    "The parameter 'COVERAGEID' holds '..', a NUL or a control character."
    """

    def refusal(self, query: str) -> str | None:
        """Why a query string is refused (``None``: it may go to MapServer).

        Parameters
        ----------
        query
            The raw query string.

        Returns
        -------
        str or None
        """
        raw = unquote(unquote(query))
        if ".." in raw or "\x00" in raw:
            bad = next(
                (k for k, v in parse_qsl(query, keep_blank_values=True) if _bad_value(k + v)),
                "query",
            )
            return f"The parameter {bad!r} holds '..', a NUL or a control character."
        pairs = parse_qsl(query, keep_blank_values=True)
        service = ""
        for key, value in pairs:
            if _FORBIDDEN_NAMES.match(key.strip()):
                name = key.strip()
                if name.lower().startswith("map"):
                    return f"The parameter {name!r} is not accepted: the server's mapfile is fixed."
                return f"The parameter {name!r} is not accepted by this server."
            if _bad_value(key + value):
                return f"The parameter {key!r} holds '..', a NUL or a control character."
            if key.strip().upper() == "SERVICE":
                service = value.strip().upper()
        if service not in _SERVICES:
            return "Name the service: SERVICE=WMS (1.3.0) or SERVICE=WCS (2.0.1)."
        return None


def _bad_value(text: str) -> bool:
    decoded = unquote(unquote(text))
    return ".." in decoded or any(ord(ch) < 32 for ch in decoded)


_TIME_AXES = frozenset({"time", "t", "ansi", "date", "phenomenontime", "unix"})
_SUBSET = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s*(?:,[^(]*)?\((.*)\)\s*$")


def _when(text: str) -> _dt.datetime | None:
    """An ISO date or date-time (quoted or not) as an aware UTC datetime; None for ``*``."""
    text = text.strip().strip('"').strip("'").strip()
    if text in ("", "*"):
        return None
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is no ISO 8601 date or date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value


def temporal_subset(query: str, times: Mapping[str, Mapping[str, str]]) -> str:
    """Turn a WCS 2.0 ``SUBSET=time(...)`` into the coverage of that date (MapServer has none).

    A slice (``time("2022-04-01")``) picks the date equal to it (a date alone: that day);
    a trim (``time("2022-03-01","2022-04-05")``, ends included, ``*`` open) picks the latest
    date inside. The other parameters pass unchanged.

    Parameters
    ----------
    query
        The request's query string.
    times
        Coverage id -> {date: coverage id of that date} (``times`` of ``ows-coverages.json``).

    Returns
    -------
    str
        The query string for MapServer.

    Raises
    ------
    ValueError
        The subset is malformed, the coverage has no time axis, or no date matches (the
        message says which dates there are).

    Examples
    --------
    >>> times = {"c.v": {"2022-04-01T00:00:00Z": "c.v.20220401T000000Z"}}
    >>> temporal_subset('SERVICE=WCS&COVERAGEID=c.v&SUBSET=time("2022-04-01")', times)
    'SERVICE=WCS&COVERAGEID=c.v.20220401T000000Z'
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    kept: list[tuple[str, str]] = []
    subset: str | None = None
    for key, value in pairs:
        match = _SUBSET.match(value) if key.upper() == "SUBSET" else None
        if match and match.group(1).lower() in _TIME_AXES:
            subset = match.group(2)
        else:
            kept.append((key, value))
    if subset is None:
        return query
    cov_keys = [i for i, (k, _) in enumerate(kept) if k.upper() == "COVERAGEID"]
    coverage = kept[cov_keys[0]][1] if cov_keys else ""
    dates = times.get(coverage)
    if not dates:
        raise ValueError(
            f"The coverage {coverage!r} has no time axis: leave out the time subset, or ask "
            f"one of {sorted(times)}."
        )
    parts = subset.split(",")
    if len(parts) not in (1, 2):
        raise ValueError(f"Subset time({subset}): give one date or two (a start, an end).")
    known = {stamp: _when(stamp) for stamp in dates}
    if len(parts) == 1:
        at = _when(parts[0])
        day_only = len(parts[0].strip().strip('"').strip("'")) == 10
        hits = [
            s
            for s, t in known.items()
            if t is not None and at is not None and (t.date() == at.date() if day_only else t == at)
        ]
    else:
        low, high = _when(parts[0]), _when(parts[1])
        if low is not None and high is not None and high.date() < low.date():
            raise ValueError(f"Subset time({subset}): the end is before the start.")
        end_day = len(parts[1].strip().strip('"').strip("'")) == 10
        hits = [
            s
            for s, t in known.items()
            if t is not None
            and (low is None or t >= low)
            and (high is None or (t.date() <= high.date() if end_day else t <= high))
        ]
    if not hits:
        raise ValueError(
            f"No date of {coverage!r} in time({subset}): its dates are {sorted(dates)}."
        )
    kept[cov_keys[0]] = (kept[cov_keys[0]][0], dates[max(hits)])
    return urlencode(kept, safe="(),:*\"'")


def _at(value: str, dates: Sequence[str]) -> bool:
    """Whether a WMS ``TIME`` value (an instant, a prefix such as ``2022-04``, or
    ``start/end[/period]``) holds one of ``dates``."""
    value = value.strip()
    if "/" in value:
        start, end = [*value.split("/"), ""][:2]
        low, high = _when(start), _when(end)
        end_day = len(end.strip()) <= 10
        for stamp in dates:
            t = _when(stamp)
            if t is None or (low is not None and t < low):
                continue
            if high is None or (t.date() <= high.date() if end_day else t <= high):
                return True
        return False
    if len(value) <= 10:  # a year, a month or a day: the dates it covers
        return any(stamp.startswith(value) for stamp in dates)
    at = _when(value)
    return any(_when(stamp) == at for stamp in dates)


def wms_time(query: str, times: Mapping[str, Sequence[str]]) -> None:
    """Refuse a WMS ``TIME`` that is none of the requested layers' dates.

    MapServer draws the default date for a date it does not have (tile indexes); WMS 1.3.0
    asks for an ``InvalidDimensionValue`` exception when, as here, no nearest value is
    offered.

    Parameters
    ----------
    query
        The request's query string.
    times
        WMS layer or group -> its dates (``wms_times`` of ``ows-coverages.json``).

    Raises
    ------
    ValueError
        A time value matches no date of a dated layer (the message lists the dates).

    Examples
    --------
    >>> times = {"f.water": ["2022-04-01T00:00:00Z", "2022-04-13T00:00:00Z"]}
    >>> wms_time("SERVICE=WMS&REQUEST=GetMap&LAYERS=f.water&TIME=2022-04", times)
    >>> wms_time("SERVICE=WMS&REQUEST=GetMap&LAYERS=f.water&TIME=2021-01-01", times)
    Traceback (most recent call last):
    ...
    ValueError: TIME=2021-01-01 is no date of f.water: ...
    """
    upper = {k.upper(): v for k, v in parse_qsl(query, keep_blank_values=True)}
    if upper.get("SERVICE", "").upper() != "WMS" or not upper.get("TIME", "").strip():
        return
    if upper.get("REQUEST", "").lower() not in ("getmap", "getfeatureinfo"):
        return
    names = {
        n.strip()
        for key in ("LAYERS", "QUERY_LAYERS")
        for n in upper.get(key, "").split(",")
        if n.strip() in times
    }
    for value in upper["TIME"].split(","):
        for name in sorted(names):
            if not _at(value, times[name]):
                raise ValueError(
                    f"TIME={value.strip()} is no date of {name}: its dates are "
                    f"{', '.join(times[name])}."
                )


def tiff_format(query: str, formats: Mapping[str, str]) -> str:
    """Name the coverage's own GeoTIFF format in a WCS ``GetCoverage`` for ``image/tiff``.

    MapServer answers ``FORMAT=image/tiff`` with the first output format of that type
    (8-bit): a float coverage would come back rounded. So ``image/tiff`` (or no format)
    becomes the coverage's format (``GEOTIFF_FLOAT32``...), still sent as ``image/tiff``.

    Parameters
    ----------
    query
        The request's query string.
    formats
        Coverage id -> output format name.

    Returns
    -------
    str

    Examples
    --------
    >>> tiff_format("service=WCS&request=GetCoverage&coverageid=c.v&format=image/tiff",
    ...             {"c.v": "GEOTIFF_FLOAT32"})
    'service=WCS&request=GetCoverage&coverageid=c.v&format=GEOTIFF_FLOAT32'
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    upper = {k.upper(): v for k, v in pairs}
    if upper.get("REQUEST", "").lower() != "getcoverage":
        return query
    wanted = formats.get(upper.get("COVERAGEID", ""))
    given = upper.get("FORMAT", "image/tiff").split(";")[0].strip().lower()
    if wanted is None or given not in ("image/tiff", "tiff", "geotiff"):
        return query
    kept = [(k, v) for k, v in pairs if k.upper() != "FORMAT"] + [("format", wanted)]
    return urlencode(kept, safe="(),:*\"'")


def _cgi_env(mapfile: str, query: str, config: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REQUEST_METHOD": "GET",
        "QUERY_STRING": query,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_NAME": "127.0.0.1",
        "MS_MAPFILE": mapfile,
        "MS_MAP_NO_PATH": "1",
    }
    if config:
        env["MAPSERVER_CONFIG_FILE"] = config
    for key in ("PROJ_DATA", "PROJ_LIB", "GDAL_DATA", "LANG", "LC_ALL"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _split_cgi(out: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a CGI answer."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = out.partition(sep)
        if found:
            break
    else:
        return 502, {"content-type": "text/plain"}, b"MapServer gave no answer."
    headers: dict[str, str] = {}
    status = 200
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "status":
            with contextlib.suppress(ValueError):
                status = int(value.split()[0])
        elif key.strip():
            headers[key.strip().lower()] = value.strip()
    return status, headers, body


def create_app(
    mapfile: str | os.PathLike[str] | None = None,
    *,
    mapserv: str | None = None,
    max_running: int = 4,
) -> Any:
    """The Starlette app: ``/ows`` runs ``mapserv`` on the fixed mapfile (a uvicorn factory).

    Parameters
    ----------
    mapfile
        The mapfile (default: ``$MUS_LAB_OWS_MAPFILE``).
    mapserv
        The ``mapserv`` program (default: :func:`find_mapserv`).
    max_running
        At most this many ``mapserv`` processes at once.

    Returns
    -------
    starlette.applications.Starlette

    Raises
    ------
    ServiceError
        No mapfile, or MapServer or Starlette is missing.
    """
    try:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ServiceError("Starlette is missing: pip install 'mus_lab[serve]'.") from exc
    fixed = os.fspath(mapfile or os.environ.get(MAPFILE_ENV, ""))
    if not fixed or not Path(fixed).is_file():
        raise ServiceError(
            f"No mapfile at {fixed!r}: write one with write_mapfile(catalog, folder, url=...)."
        )
    program = mapserv or find_mapserv()
    if program is None:
        raise ServiceError(f"MapServer's mapserv is missing: {_INSTALL_HINT}.")
    config = Path(fixed).with_name("mapserver.conf")
    coverages: dict[str, dict[str, Any]] = {"times": {}, "formats": {}, "wms_times": {}}
    with contextlib.suppress(OSError, ValueError):
        coverages.update(json.loads(Path(fixed).with_name(COVERAGES_FILE).read_text("utf-8")))
    check = RequestCheck()
    gate = asyncio.Semaphore(max_running)

    async def ows(request: Request) -> Response:
        query = request.url.query
        why = check.refusal(query)
        if why is not None:
            return PlainTextResponse(why, status_code=400)
        try:
            query = tiff_format(temporal_subset(query, coverages["times"]), coverages["formats"])
        except ValueError as exc:
            return Response(_exception(str(exc)), status_code=400, media_type="application/xml")
        try:
            wms_time(query, coverages["wms_times"])
        except ValueError as exc:
            return Response(_wms_exception(str(exc)), status_code=400, media_type="text/xml")
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                program,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_cgi_env(fixed, query, str(config) if config.is_file() else None),
            )
            try:
                out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                return PlainTextResponse("MapServer took too long.", status_code=504)
        status, headers, body = _split_cgi(out)
        kept = {k: v for k, v in headers.items() if k in ("content-type", "content-disposition")}
        return Response(body, status_code=status, headers=kept)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def other(request: Request) -> Response:
        return PlainTextResponse(
            "Not found: the services are at /ows (SERVICE=WMS or SERVICE=WCS).", status_code=404
        )

    return Starlette(
        routes=[
            Route("/ows", ows, methods=["GET", "HEAD"]),
            Route("/_ping", ping, methods=["GET"]),
            Route("/{rest:path}", other, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
        ]
    )


def _exception(text: str, code: str = "InvalidSubsetting") -> bytes:
    """An OWS 2.0 exception report."""
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/2.0" version="2.0.1">'
        f'<ows:Exception exceptionCode="{code}" locator="subset">'
        f"<ows:ExceptionText>{escape(text)}</ows:ExceptionText></ows:Exception>"
        "</ows:ExceptionReport>\n"
    ).encode()


def _wms_exception(text: str, code: str = "InvalidDimensionValue") -> bytes:
    """A WMS 1.3.0 service exception report."""
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc">'
        f'<ServiceException code="{code}">{escape(text)}</ServiceException>'
        "</ServiceExceptionReport>\n"
    ).encode()


def _app_from_env() -> Any:
    """uvicorn's factory: :func:`create_app` on ``$MUS_LAB_OWS_MAPFILE``."""
    return create_app()


# -- the server ------------------------------------------------------------------------
class OwsServer(Server):
    """WMS/WCS of a product catalog (:func:`create_app` in a subprocess on 127.0.0.1).

    Parameters
    ----------
    catalog
        The product catalog (folder or ``catalog.json``); the mapfile is regenerated from
        it at each start.
    folder
        Where the server keeps its mapfile, tile indexes, log (``ows.log``) and state
        (``ows.json``).
    port
        TCP port (default: a free one).

    Examples
    --------
    ``with OwsServer(catalog, folder) as ows:`` starts it; ``ows.url`` is the service
    address (``http://127.0.0.1:PORT/ows``) for OWSLib, QGIS or GDAL.

    >>> import tempfile
    >>> server = OwsServer("catalog.json", tempfile.mkdtemp())
    >>> server.url is None, server.running
    (True, False)
    """

    NAME = "ows"
    TITLE = "The WMS/WCS server"
    MARKER = _MARKER
    HEALTH = "/_ping"
    PATH = "/ows"

    def __init__(
        self,
        catalog: str | os.PathLike[str] | None,
        folder: str | os.PathLike[str],
        *,
        port: int | None = None,
    ) -> None:
        super().__init__(folder, port=port)
        self.catalog = catalog

    @property
    def mapfile(self) -> Path:
        """The generated mapfile."""
        return self.folder / "ows.map"

    def start(self, *, timeout: float = 30) -> OwsServer:
        """Write the mapfile, start the server and wait until it answers.

        Parameters
        ----------
        timeout
            Seconds to wait for the first answer.

        Returns
        -------
        OwsServer
            ``self``.

        Raises
        ------
        ServiceError
            MapServer or uvicorn is missing, the catalog holds no product, or the server
            did not answer in time (the message quotes its log).
        PublishError
            No catalog at ``catalog``.
        """
        if self.running:
            return self
        if find_mapserv() is None:
            raise ServiceError(f"MapServer's mapserv is missing: {_INSTALL_HINT}.")
        try:
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            raise ServiceError(
                "Starlette and uvicorn are missing: pip install 'mus_lab[serve]'."
            ) from None
        if self.catalog is None:
            raise ServiceError("start needs the product catalog (--catalog PATH).")
        from mus_lab.services.postgres import _free_port

        self.folder.mkdir(parents=True, exist_ok=True)
        port = self._port or _free_port()
        url = f"http://127.0.0.1:{port}/ows"
        write_mapfile(self.catalog, self.folder, url=url)
        (self.folder / "mapserver.conf").write_text(
            'CONFIG\n  ENV\n    MS_MAP_NO_PATH "1"\n  END\nEND\n', "utf-8"
        )
        env = child_env(("MS_", "MUS_LAB_OWS"), {MAPFILE_ENV: str(self.mapfile)})
        cmd = [
            "-m", "uvicorn", "mus_lab.services.ows:_app_from_env", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
        ]  # fmt: skip
        return self._spawn(cmd, env, port=port, timeout=timeout)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m mus_lab.services.ows start|stop|status DIR [--catalog PATH]``.

    Parameters
    ----------
    argv
        The arguments (``sys.argv[1:]`` when ``None``).

    Returns
    -------
    int
        0 on success (``status``: running), 1 for ``status`` of a server that is not
        running, 2 on an error (one line on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m mus_lab.services.ows",
        description="WMS 1.3.0 and WCS 2.0.1 of a product catalog (MapServer) on 127.0.0.1.",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--catalog", default=None, help="the product catalog (for start)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = parser.parse_args(None if argv is None else list(argv))
    return command(
        lambda: OwsServer(args.catalog, args.folder, port=args.port),
        args.action,
        lambda s: f"WMS/WCS running: {s.url}",
    )


if __name__ == "__main__":
    sys.exit(main())
