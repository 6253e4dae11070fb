"""Items to a lazy ``xarray.Dataset`` on one GeoBox, through odc-stac (stackstac as an option).

Nothing is read at load time: the result is dask-backed and chunked
(``time=1``, ``y``/``x`` = ``MUS_LAB_CHUNK_SIZE``). Values stay as stored (DN for
Sentinel-2); per-date ``scale``/``offset`` from the STAC raster extension travel with
the cube as ``<band>_scale`` / ``<band>_offset`` coordinates on ``time`` so that the ARD
stage can apply the right processing-baseline offset to every date (see :func:`scaling`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry

from mus_lab._settings import resolve_chunks
from mus_lab.cube._grid import reference_geobox
from mus_lab.errors import AssetError, CubeError, MissingProjectionError

__all__ = ["DEFAULT_RESAMPLING", "has_scaling", "load", "load_sensors", "scaling"]

#: Masks and labels are resampled with nearest neighbour, everything else bilinearly.
DEFAULT_RESAMPLING: Mapping[str, str] = {
    "scl": "nearest",
    "landcover": "nearest",
    "reference_water": "nearest",
    "flood": "nearest",
    "mask": "nearest",
    "valid": "nearest",
    "quality": "nearest",
    "clm": "nearest",
    "mg2": "nearest",
    "sat": "nearest",
    "edg": "nearest",
    "*": "bilinear",
}

_RASTER_TYPES = ("image/tiff", "image/jp2", "image/vnd.stac.geotiff", "application/x-geotiff")
_NON_DATA_KEYS = {"visual", "thumbnail", "overview", "preview", "tilejson", "rendered_preview"}

Loader = Literal["odc", "stackstac"]


def _as_items(items: Any) -> list[pystac.Item]:
    if isinstance(items, pystac.Item):
        return [items]
    inner = getattr(items, "items", None)
    if inner is not None and not callable(inner):
        items = inner
    out = list(items)
    if not out:
        raise CubeError(
            "No items to load: run a search that returns items (mus_lab.catalog.search) "
            "and pass its result."
        )
    bad = [type(it).__name__ for it in out if not isinstance(it, pystac.Item)]
    if bad:
        raise CubeError(f"cube.load expects pystac.Item objects, got {sorted(set(bad))}.")
    return out


def _is_raster(key: str, asset: pystac.Asset) -> bool:
    if key in _NON_DATA_KEYS:
        return False
    roles = set(asset.roles or ())
    if roles & {"thumbnail", "overview", "metadata", "visual"} and "data" not in roles:
        return False
    media = (asset.media_type or "").lower()
    return any(media.startswith(t) for t in _RASTER_TYPES) or key.endswith((".tif", ".jp2"))


def _default_bands(items: Sequence[pystac.Item]) -> tuple[str, ...]:
    counts: Counter[str] = Counter()
    for it in items:
        counts.update(k for k, a in it.assets.items() if _is_raster(k, a))
    return tuple(k for k, n in counts.items() if n == len(items))


def _has_projection(item: pystac.Item, asset: pystac.Asset) -> bool:
    def crs_of(d: Mapping[str, Any]) -> bool:
        return any(
            d.get(k) is not None for k in ("proj:epsg", "proj:code", "proj:wkt2", "proj:projjson")
        )

    def grid_of(d: Mapping[str, Any]) -> bool:
        return d.get("proj:transform") is not None or d.get("proj:shape") is not None

    a, p = asset.extra_fields, item.properties
    return (crs_of(a) or crs_of(p)) and (grid_of(a) or grid_of(p))


def _asset_key(item: pystac.Item, band: str) -> str:
    """The asset of ``band``: itself, or ``key`` for band ``N`` of a multi-band asset
    (``"rrrl.2"``, odc-stac's naming)."""
    if band in item.assets:
        return band
    key, _, index = band.rpartition(".")
    return key if index.isdigit() and key in item.assets else band


def _validate(items: Sequence[pystac.Item], bands: Sequence[str]) -> None:
    for it in items:
        missing = [b for b in bands if _asset_key(it, b) not in it.assets]
        if missing:
            available = sorted(k for k, a in it.assets.items() if _is_raster(k, a))
            raise AssetError(
                f"Item {it.id!r} ({it.collection_id}) has no asset {missing}; it offers {available}. "
                "Choose bands among those, or search through mus_lab.catalog.search so that "
                "provider asset names (e.g. 'B04') are mapped to common names ('red')."
            )
        for b in bands:
            if not _has_projection(it, it.assets[_asset_key(it, b)]):
                raise MissingProjectionError(
                    f"Item {it.id!r} asset {b!r} carries no projection (proj:code/proj:epsg with "
                    "proj:transform or proj:shape), so it cannot be placed on a grid. Add the STAC "
                    "projection extension to the item (e.g. with rio-stac) or use a catalog that has it."
                )


def _band_scaling(item: pystac.Item, band: str) -> tuple[float, float] | None:
    """``(scale, offset)`` declared by the asset's ``raster:bands``, or None if it declares none."""
    key = _asset_key(item, band)
    bands_meta = item.assets[key].extra_fields.get("raster:bands") or []
    index = int(band.rpartition(".")[2]) - 1 if key != band else 0
    if 0 <= index < len(bands_meta) and isinstance(bands_meta[index], Mapping):
        meta = bands_meta[index]
        if meta.get("scale") is None and meta.get("offset") is None:
            return None
        scale, offset = meta.get("scale"), meta.get("offset")
        return float(1.0 if scale is None else scale), float(0.0 if offset is None else offset)
    return None


def _solar_day(item: pystac.Item) -> dt.date:
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    lon = Geometry(item.geometry, "EPSG:4326").centroid.coords[0][0] if item.geometry else 0.0
    return (when + dt.timedelta(seconds=lon * 240.0)).date()


def _group_key(item: pystac.Item, groupby: str) -> Any:
    if groupby == "solar_day":
        return _solar_day(item)
    if groupby == "time":
        return item.datetime
    return item.id


def _time_coords(
    ds: xr.Dataset, items: Sequence[pystac.Item], bands: Sequence[str], groupby: str
) -> xr.Dataset:
    """Attach per-date metadata (scale/offset per band, platform, orbit, cloud cover)."""
    groups: dict[Any, list[pystac.Item]] = {}
    for it in items:
        groups.setdefault(_group_key(it, groupby), []).append(it)

    def first_time(key: Any) -> dt.datetime:
        return min(i.datetime or dt.datetime.min.replace(tzinfo=dt.UTC) for i in groups[key])

    ordered = [groups[k] for k in sorted(groups, key=first_time)]
    if len(ordered) != ds.sizes.get("time", 0):
        return ds  # grouping differs from the loader's: leave metadata out rather than guess
    coords: dict[str, tuple[str, np.ndarray]] = {}
    for band in bands:
        pairs = [{_band_scaling(it, band) for it in grp} for grp in ordered]
        if all(p == {None} for p in pairs):
            continue  # nothing declared: values are physical (or the user must say how)
        if any(len(p) > 1 for p in pairs):
            raise CubeError(
                f"Items merged into one date have different scale/offset for {band!r}: "
                "load them with groupby='id' to keep them apart."
            )
        # Dates whose items declare nothing get NaN: the ARD stage refuses to guess them.
        declared = [next(iter(p)) for p in pairs]
        coords[f"{band}_scale"] = ("time", np.array([d[0] if d else np.nan for d in declared]))
        coords[f"{band}_offset"] = ("time", np.array([d[1] if d else np.nan for d in declared]))
    for key, name in (
        ("platform", "platform"),
        ("sat:orbit_state", "orbit_state"),
        ("sat:relative_orbit", "relative_orbit"),
        ("s2:processing_baseline", "processing_baseline"),
        ("eo:cloud_cover", "cloud_cover"),
    ):
        values = [grp[0].properties.get(key) for grp in ordered]
        if all(v is not None for v in values):
            coords[name] = ("time", np.asarray(values))
    coords["item_ids"] = ("time", np.asarray([",".join(i.id for i in grp) for grp in ordered]))
    return ds.assign_coords(coords)


def scaling(cube: xr.Dataset | xr.DataArray, band: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Per-date ``(scale, offset)`` of a band, such that physical = DN * scale + offset.

    Bands whose items declare no ``raster:bands`` scale/offset give ``(1, 0)``; dates whose
    items declare none while others do give NaN (see :func:`has_scaling`).

    Parameters
    ----------
    cube
        A cube from :func:`load` (or one of its variables).
    band
        The band's name, e.g. ``"red"``.

    Returns
    -------
    tuple of xarray.DataArray
        ``(scale, offset)`` along ``time`` (scalars for a cube without time).

    Examples
    --------
    >>> from mus_lab.catalog import search
    >>> s2 = load(search(tiny.catalog_path, collections="sentinel-2-l2a", max_items=2), "red")
    >>> scale, offset = scaling(s2, "red")
    >>> float(scale[0]), float(offset[0])
    (0.0001, 0.0)
    """
    coords = cube.coords
    time = cube["time"] if "time" in cube.dims else None
    if f"{band}_scale" in coords:
        return cube[f"{band}_scale"], cube[f"{band}_offset"]
    one = xr.ones_like(time, dtype=float) if time is not None else xr.DataArray(1.0)
    return one, one * 0.0


def has_scaling(cube: xr.Dataset | xr.DataArray, band: str) -> bool:
    """True when the items of ``band`` declared a scale/offset (``raster:bands``).

    Parameters
    ----------
    cube
        A cube from :func:`load`.
    band
        The band's name.

    Returns
    -------
    bool
        Whether ``<band>_scale`` / ``<band>_offset`` coordinates travel with the cube.

    Examples
    --------
    >>> from mus_lab.catalog import search
    >>> s2 = load(search(tiny.catalog_path, collections="sentinel-2-l2a", max_items=1), "red")
    >>> has_scaling(s2, "red"), has_scaling(s2, "vv")
    (True, False)
    """
    return f"{band}_scale" in cube.coords


def _chunks(chunks: Mapping[str, int] | int | None) -> dict[str, int]:
    size = resolve_chunks(chunks if isinstance(chunks, int) else None)
    out = {"time": 1, "y": size, "x": size}
    if not isinstance(chunks, int):
        out.update(chunks or {})
    return out


@dataclass(frozen=True)
class _Request:
    """What :func:`load` hands to a loader back end, checked and normalised."""

    items: Sequence[pystac.Item]
    bands: Sequence[str]
    geobox: GeoBox
    chunks: dict[str, int]
    resampling: Mapping[str, str]
    groupby: str


def _load_odc(req: _Request) -> xr.Dataset:
    import odc.stac

    odc_chunks: dict[str, int | Literal["auto"]] = dict(req.chunks)
    return odc.stac.load(
        req.items,
        bands=list(req.bands),
        geobox=req.geobox,
        chunks=odc_chunks,
        resampling=dict(req.resampling),
        groupby=req.groupby,
        fail_on_error=True,
    )


def _load_stackstac(req: _Request) -> xr.Dataset:
    items, bands, geobox, chunks, resampling, groupby = (
        req.items,
        req.bands,
        req.geobox,
        req.chunks,
        req.resampling,
        req.groupby,
    )
    import stackstac
    from rasterio.enums import Resampling

    epsg = geobox.crs.epsg if geobox.crs is not None else None
    if epsg is None:
        raise CubeError("stackstac needs an EPSG grid; use loader='odc' for this CRS.")
    out = {}
    for band in bands:
        method = resampling.get(band, resampling.get("*", "nearest"))
        first = items[0].assets[band].extra_fields.get("raster:bands") or [{}]
        dtype = np.dtype(first[0].get("data_type", "float32"))
        nodata = first[0].get("nodata", np.nan if dtype.kind == "f" else 0)
        arr = stackstac.stack(
            list(items),
            assets=[band],
            epsg=epsg,
            resolution=abs(geobox.resolution.x),
            bounds=tuple(geobox.boundingbox),
            snap_bounds=False,
            chunksize=(1, 1, chunks["y"], chunks["x"]),
            resampling=getattr(Resampling, method),
            dtype=dtype,
            fill_value=dtype.type(nodata),
            rescale=False,
            xy_coords="center",
            properties=False,
            band_coords=False,
        ).isel(band=0, drop=True)
        keys = np.asarray([str(_group_key(it, groupby)) for it in items])
        if groupby != "id" and len(set(keys)) < len(keys):
            arr = arr.assign_coords(group=("time", keys))

            def _mosaic(g: xr.DataArray, fill: float = nodata) -> xr.DataArray:
                merged = stackstac.mosaic(g, dim="time", nodata=fill)
                return merged.expand_dims(time=[g.time.values.min()])

            arr = arr.groupby("group").map(_mosaic).squeeze("group", drop=True)
        arr.attrs = {"nodata": nodata}
        out[band] = arr.drop_vars([c for c in arr.coords if c not in {"time", "x", "y"}])
    ds = xr.Dataset(out).sortby("time")
    # Same pixel centres as the geobox, and the geobox's CRS attached the odc way.
    xs, ys = geobox.coordinates["x"].values, geobox.coordinates["y"].values
    ds = ds.assign_coords(x=xs, y=ys)
    return ds.odc.assign_crs(geobox.crs)


def _float_nodata_as_nan(ds: xr.Dataset) -> xr.Dataset:
    """Float bands with a finite no-data value (Planetary Computer ``sentinel-1-rtc``: -32768)
    get NaN there, so that no-data never passes for a measurement; integers keep theirs."""
    for name, var in ds.data_vars.items():
        try:
            nodata = float(var.attrs.get("nodata", "nan"))
        except (TypeError, ValueError):
            continue
        if var.dtype.kind == "f" and np.isfinite(nodata):
            ds[name] = var.where(var != nodata).assign_attrs({**var.attrs, "nodata": np.nan})
    return ds


def load(
    items: Any,
    bands: str | Sequence[str] | None = None,
    *,
    geobox: GeoBox | None = None,
    like: xr.Dataset | xr.DataArray | None = None,
    bbox: Sequence[float] | None = None,
    resolution: float = 10.0,
    crs: str | int | None = None,
    chunks: Mapping[str, int] | int | None = None,
    resampling: str | Mapping[str, str] | None = None,
    groupby: Literal["solar_day", "time", "id"] = "solar_day",
    loader: Loader = "odc",
) -> xr.Dataset:
    """Load STAC items into a lazy, dask-chunked ``xarray.Dataset`` on one GeoBox.

    Parameters
    ----------
    items
        A :class:`mus_lab.catalog.SearchResult`, a ``pystac.ItemCollection`` or items.
    bands
        Canonical band names (``"red"``, ``"vv"`` ...); default: every raster asset
        that all items have.
    geobox, like, bbox, resolution, crs
        The grid, normalised once: ``geobox``; else the grid of ``like``; else the
        Sentinel-2 10 m UTM grid (:func:`reference_geobox`) of ``bbox`` or of the items.
    chunks
        Dask chunks, e.g. ``{"x": 2048, "y": 2048}`` or ``2048`` (``time`` is 1); ``None``
        or sides left out: the setting ``chunk_size`` (``MUS_LAB_CHUNK_SIZE``,
        :func:`mus_lab.set_options`). ``{"time": -1, ...}`` puts all dates of a window in one chunk: use it for temporal
        reductions and gap-filling, whose peak memory then stays flat as the area grows
        (with one date per chunk, dask's task order holds more chunks on larger areas).
    resampling
        One method, or per band (``{"scl": "nearest", "*": "bilinear"}``);
        default :data:`DEFAULT_RESAMPLING`.
    groupby
        ``"solar_day"`` merges items of one pass, ``"time"`` by timestamp, ``"id"`` none.
    loader
        ``"odc"`` (odc-stac, default) or ``"stackstac"``.

    Returns
    -------
    xarray.Dataset
        Dims ``(time, y, x)``; values as stored (float bands: NaN where the items declare
        a finite no-data value); ``<band>_scale``/``<band>_offset``,
        ``platform``, ``orbit_state`` ... as coordinates on ``time``.

    Raises
    ------
    AssetError
        An item lacks a requested band, or the items share no raster asset.
    MissingProjectionError
        An item or asset has no projection to place it on a grid.
    CubeError
        No items, an unknown ``loader``, or a grid stackstac cannot use.
    InvalidBBoxError
        A malformed ``bbox``.
    MusLabError
        ``chunks`` is not a positive number of pixels.

    Examples
    --------
    >>> from mus_lab.catalog import search
    >>> result = search(tiny.catalog_path, collections="sentinel-2-l2a")
    >>> ds = load(result, ("red", "nir"), chunks=32)
    >>> ds.red.dims, ds.red.data.chunksize
    (('time', 'y', 'x'), (1, 32, 32))
    """
    item_list = _as_items(items)
    band_list: tuple[str, ...] = (bands,) if isinstance(bands, str) else tuple(bands or ())
    if not band_list:
        band_list = _default_bands(item_list)
        if not band_list:
            raise AssetError(
                "These items share no raster asset: pass bands=... explicitly "
                f"(first item offers {sorted(item_list[0].assets)})."
            )
    _validate(item_list, band_list)
    if geobox is None:
        if like is not None:
            from mus_lab.cube._same import geobox_of

            geobox = geobox_of(like)
        else:
            geobox = reference_geobox(item_list, bbox=bbox, resolution=resolution, crs=crs)
    rs: dict[str, str] = dict(DEFAULT_RESAMPLING)
    if isinstance(resampling, str):
        rs = {
            b: (DEFAULT_RESAMPLING[b] if b in DEFAULT_RESAMPLING else resampling) for b in band_list
        }
        rs["*"] = resampling
    elif resampling:
        rs.update(resampling)
    loader_fn = {"odc": _load_odc, "stackstac": _load_stackstac}.get(loader)
    if loader_fn is None:
        raise CubeError(f"Unknown loader {loader!r}: choose 'odc' or 'stackstac'.")
    chunk_spec = _chunks(chunks)
    if chunk_spec.get("time") == -1:  # all dates in one chunk: right for temporal reductions
        chunk_spec["time"] = max(1, len({_group_key(it, groupby) for it in item_list}))
    ds = loader_fn(_Request(item_list, band_list, geobox, chunk_spec, rs, groupby))
    ds = _time_coords(_float_nodata_as_nan(ds), item_list, band_list, groupby)
    ds.attrs.update(
        {
            "collections": ",".join(sorted({str(it.collection_id) for it in item_list})),
            "loader": loader,
            "groupby": groupby,
        }
    )
    return ds


def load_sensors(
    sensors: Mapping[str, Any],
    *,
    bands: Mapping[str, Sequence[str]] | None = None,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    resolution: float = 10.0,
    chunks: Mapping[str, int] | int | None = None,
    loader: Loader = "odc",
) -> dict[str, xr.Dataset]:
    """Load several sensors (e.g. ``{"s2": ..., "s1": ..., "rcm": ...}``) onto one grid.

    The grid is ``geobox``, else the Sentinel-2 10 m UTM grid of ``bbox`` or of all the
    items (Sentinel-2 items decide the CRS). Each sensor keeps its own time axis.

    Parameters
    ----------
    sensors
        Name -> items (a :class:`~mus_lab.catalog.SearchResult` or items) per sensor.
    bands
        Name -> bands to load per sensor; a sensor left out loads all its bands.
    geobox, bbox, resolution
        The shared grid, as for :func:`load`.
    chunks, loader
        As for :func:`load` (``chunks=None``: the setting ``chunk_size``).

    Returns
    -------
    dict of str to xarray.Dataset
        One lazy cube per sensor, all on the same grid.

    Raises
    ------
    AssetError, MissingProjectionError, CubeError, InvalidBBoxError
        As :func:`load`.

    Examples
    --------
    >>> from mus_lab.catalog import search
    >>> found = {s: search(tiny.catalog_path, collections=c, max_items=2)
    ...          for s, c in (("s2", "sentinel-2-l2a"), ("s1", "sentinel-1-grd"))}
    >>> cubes = load_sensors(found, bands={"s2": ("red",), "s1": ("vv",)})
    >>> cubes["s2"].odc.geobox == cubes["s1"].odc.geobox
    True
    """
    loaded = {name: _as_items(items) for name, items in sensors.items()}
    if geobox is None:
        every: Iterable[pystac.Item] = [it for its in loaded.values() for it in its]
        geobox = reference_geobox(every, bbox=bbox, resolution=resolution)
    return {
        name: load(items, (bands or {}).get(name), geobox=geobox, chunks=chunks, loader=loader)
        for name, items in loaded.items()
    }
