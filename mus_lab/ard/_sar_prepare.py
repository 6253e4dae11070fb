"""Sentinel-1 and RCM backscatter to analysis-ready data on the reference (Sentinel-2) grid.

:func:`prepare_s1` takes geocoded sigma0 items (linear, float32) and loads them onto the
GeoBox with bilinear resampling in linear power (never in dB, which would bias the mean).
:func:`prepare_rcm` takes RCM product folders (uint16 magnitude DN with per-column LUTs):
the LUT gains and noise levels are given per *image column*, so each product is calibrated
in its native geometry first, then reprojected onto the GeoBox. Both return the same
Dataset: one float32 variable per polarisation (linear, or dB with ``db=True``), ``valid``
(bool) and ``quality`` (uint8 bits of :data:`mus_lab.contracts.SAR_QUALITY_BITS`: nodata,
unusable), the one validity convention of ARD (:mod:`mus_lab.contracts`), and per-date
``orbit_state`` / ``relative_orbit`` coordinates. Everything stays lazy.

Speckle filtering runs where the speckle statistics hold: in the native geometry for RCM;
for Sentinel-1 (already geocoded items) on the grid after loading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import cube
from mus_lab.ard._lineage import search_record
from mus_lab.ard._options import Chunks, native_chunks, with_overrides
from mus_lab.ard._publish import sar_validity
from mus_lab.ard._rcm import open_rcm
from mus_lab.ard._s1 import DataMask, data_mask
from mus_lab.ard._sar_common import to_db
from mus_lab.ard._sar_product import SarProduct
from mus_lab.ard._speckle import SpeckleMethod, check_speckle, speckle_filter
from mus_lab.contracts import RECIPE_ATTR
from mus_lab.errors import ARDError

__all__ = ["SarOptions", "prepare_rcm", "prepare_s1"]

Calibration = Literal["sigma0", "beta0", "gamma0"]


@dataclass(frozen=True)
class SarOptions:
    """Options of :func:`prepare_s1` and :func:`prepare_rcm`.

    Parameters
    ----------
    polarisations : tuple of str
        Polarisations to prepare (any case), default ``("vv", "vh")``.
    calibration : {"sigma0", "beta0", "gamma0"}
        Which LUT calibrates products in their native geometry (RCM, Sentinel-1 SAFE).
        Geocoded Sentinel-1 items already hold sigma0: :func:`prepare_s1` takes only
        ``"sigma0"`` for them.
    noise : bool
        Subtract the product's noise levels (default True; products calibrated here only).
    speckle : {"lee", "refined_lee", "lee_sigma"} or None
        Speckle filter (:func:`~mus_lab.ard.speckle_filter`), default none.
    window : int
        Odd speckle filter window (default 7).
    db : bool
        Backscatter in dB instead of linear power.
    chunks : int, mapping or None
        Dask chunks (as :func:`mus_lab.cube.load` takes them); default the ``chunk_size``
        setting (:func:`mus_lab.set_options`, ``MUS_LAB_CHUNK_SIZE``).

    Raises
    ------
    ARDError
        No polarisation or an unknown calibration.
    SpeckleFilterError
        Unknown speckle filter or a bad window (an :class:`ARDError`).

    Examples
    --------
    >>> from mus_lab.ard import SarOptions
    >>> SarOptions(speckle="lee", db=True).polarisations
    ('vv', 'vh')
    >>> SarOptions(polarisations=())
    Traceback (most recent call last):
    ...
    mus_lab.errors.ARDError: polarisations is empty: pass e.g. ('vv', 'vh').
    """

    polarisations: tuple[str, ...] = ("vv", "vh")
    calibration: Calibration = "sigma0"
    noise: bool = True
    speckle: SpeckleMethod | None = None
    window: int = 7
    db: bool = False
    chunks: Chunks = None

    def __post_init__(self) -> None:
        if isinstance(self.polarisations, str):
            raise ARDError(
                f"polarisations={self.polarisations!r} is one string: pass a tuple, "
                "e.g. ('vv', 'vh')."
            )
        pols = tuple(p.lower() for p in self.polarisations)
        if not pols:
            raise ARDError("polarisations is empty: pass e.g. ('vv', 'vh').")
        object.__setattr__(self, "polarisations", pols)
        if self.calibration not in ("sigma0", "beta0", "gamma0"):
            raise ARDError(
                f"calibration={self.calibration!r}: choose 'sigma0', 'beta0' or 'gamma0'."
            )
        if self.speckle is not None:
            check_speckle(self.speckle, self.window)


def _mask_attrs() -> dict[str, Any]:
    return {
        "flag_values": [int(m) for m in DataMask],
        "flag_meanings": " ".join(m.name.lower() for m in DataMask),
    }


def _combined_mask(codes: Sequence[xr.DataArray]) -> xr.DataArray:
    """One mask for all polarisations: no data if any has none, else the worst code."""
    stacked = xr.concat(list(codes), "pol")
    worst = stacked.max("pol")
    out = xr.where((stacked == DataMask.NO_DATA).any("pol"), 0, worst).astype(np.uint8)
    out.name = "mask"
    out.attrs = _mask_attrs()
    return out


#: What a source gives: linear values by polarisation and the mask, both ``(time, y, x)`` on
#: the grid, and the per-date coordinates.
_OnGrid = tuple[dict[str, xr.DataArray], xr.DataArray, dict[str, Any]]


def _prepare(
    items: Any,
    source: Callable[[list[pystac.Item], GeoBox, SarOptions], _OnGrid],
    *,
    geobox: GeoBox | None,
    bbox: Sequence[float] | None,
    opts: SarOptions,
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """The one path of SAR ARD: items on a grid, mask, dB, attributes and coordinates."""
    from mus_lab.cube._load import _as_items

    item_list = sorted(_as_items(items), key=lambda it: pd.Timestamp(it.datetime))
    if geobox is None:
        geobox = cube.reference_geobox(item_list, bbox=bbox)
    values, mask, coords = source(item_list, geobox, opts)
    # Pixels whose value became NaN on the grid (bilinear weights touching no data at a
    # swath edge) are no data, whatever the nearest native code said.
    any_nan = xr.concat([v.isnull() for v in values.values()], "pol").any("pol")
    mask = xr.where(any_nan & (mask == DataMask.VALID), 0, mask).astype(np.uint8)
    mask.attrs = _mask_attrs()
    out = {}
    for pol, arr in values.items():
        arr = arr.astype(np.float32)
        units = "linear power"
        if opts.db:
            arr = to_db(arr)
            units = "dB"
        out[pol] = arr.assign_attrs(units=units, polarisation=pol.upper())
    ds = xr.Dataset(out)
    ds["valid"], ds["quality"] = sar_validity(mask)
    ds.attrs = dict(attrs) | {"speckle": opts.speckle or "none", "resampling": "bilinear"}
    ds.attrs["db"] = int(opts.db)
    ds.attrs[RECIPE_ATTR] = {
        **search_record(items, geobox, source_key="radar_sources"),
        "speckle": opts.speckle,
    }
    return ds.assign_coords(coords)


def _speckled(arr: xr.DataArray, opts: SarOptions) -> xr.DataArray:
    if opts.speckle is None:
        return arr
    return speckle_filter(arr, opts.speckle, window=opts.window)  # type: ignore[no-any-return]


def _refuse_not_items(items: Any) -> None:
    """Arrays, or items of products in radar geometry, are not what ``prepare_s1`` loads."""
    from mus_lab.ard._sar_checks import check_backscatter
    from mus_lab.errors import RadarGeometryError

    if isinstance(items, xr.DataArray | xr.Dataset | np.ndarray):
        check_backscatter(items, where="prepare_s1", geocoded=True)
        raise ARDError(
            "prepare_s1 takes STAC items or SAFE products, not an array: pass the items "
            "(catalog.search(...)) or open_safe(path)."
        )
    for it in items if isinstance(items, list | tuple) else getattr(items, "items", []):
        props = getattr(it, "properties", {}) or {}
        keys = ("proj:epsg", "proj:code", "proj:wkt2", "proj:projjson")
        if str(props.get("sar:product_type", "")).upper() in ("GRD", "SLC") and not any(
            props.get(k) is not None for k in keys
        ):
            if not any(a.extra_fields.get(k) is not None for a in it.assets.values() for k in keys):
                raise RadarGeometryError(
                    f"Item {it.id!r} is a level-1 {props['sar:product_type']} product in radar "
                    "geometry (no projection): harvest its SAFE and pass open_safe(path) to "
                    "prepare_s1, which calibrates and geocodes it."
                )


def _geocoded(items: list[pystac.Item], geobox: GeoBox, opts: SarOptions) -> _OnGrid:
    """Items whose polarisation assets are geocoded linear backscatter: load, then filter."""
    from mus_lab.ard._sar_checks import check_backscatter

    pols = opts.polarisations
    raw = cube.load(items, pols, geobox=geobox, resampling="bilinear", chunks=opts.chunks)
    for p in pols:
        check_backscatter(raw[p], where="prepare_s1", geocoded=True)
        # A declared float nodata (Planetary Computer sentinel-1-rtc: -32768) is no data.
        nodata = raw[p].attrs.get("nodata")
        if nodata is not None and np.isfinite(nodata):
            raw[p] = raw[p].where(raw[p] != nodata).assign_attrs(raw[p].attrs)
    codes = [data_mask(raw[p], raw[p]) for p in pols]
    values = {p: _speckled(raw[p].astype(np.float32), opts) for p in pols}
    keep = ("orbit_state", "relative_orbit", "platform", "item_ids")
    return values, _combined_mask(codes), {c: raw.coords[c] for c in keep if c in raw.coords}


def _calibrated_on_grid(
    prod: SarProduct, geobox: GeoBox, opts: SarOptions
) -> tuple[dict[str, xr.DataArray], xr.DataArray]:
    """One product calibrated (and filtered) in its native geometry, then put on the grid."""
    from odc.geo.xr import xr_coords

    pols = opts.polarisations
    chunks = native_chunks(opts.chunks)
    coords = dict(xr_coords(prod.native_geobox(pols[0]), dims=("y", "x")))

    def on_grid(native: xr.DataArray, **kw: Any) -> xr.DataArray:
        native = native.rename(line="y", pixel="x").drop_vars(["y", "x"]).assign_coords(coords)
        return native.odc.reproject(geobox, **kw)  # type: ignore[no-any-return]

    values, codes = {}, []
    for p in pols:
        dn = prod.open_dn(p, chunks=chunks)
        cal = prod.calibrate_dn(dn, p, to=opts.calibration, remove_noise=opts.noise, clip="nan")
        codes.append(data_mask(dn, cal))
        values[p] = on_grid(_speckled(cal, opts), resampling="bilinear").astype(np.float32)
    mask = on_grid(_combined_mask(codes), resampling="nearest", dst_nodata=0)
    return values, mask.astype(np.uint8)


def _product_of(item: pystac.Item) -> SarProduct:
    asset = item.assets.get("product")
    if asset is None and {"rr", "rl"} <= set(item.assets):
        raise ARDError(
            f"RCM item {item.id!r} is a CEOS-ARD (rcm-ard) item, already calibrated and "
            "geocoded: prepare it with mus_lab.ard.prepare_rcm_ard(items)."
        )
    if asset is None:
        raise ARDError(
            f"RCM item {item.id!r} has no 'product' asset (metadata/product.xml): prepare_rcm "
            "needs the product folder to calibrate; add the asset (role 'metadata') or pass "
            f"items of an RCM product collection. The item offers {sorted(item.assets)}."
        )
    # RcmProduct.native_geobox may answer a GCPGeoBox (tie points), which the reprojection
    # below takes as it takes a GeoBox; the protocol still says GeoBox.
    return cast(SarProduct, open_rcm(asset.get_absolute_href() or asset.href))


def _products(items: list[pystac.Item], geobox: GeoBox, opts: SarOptions) -> _OnGrid:
    """Items holding a product folder: each calibrated natively, then stacked in time."""
    dates = [_calibrated_on_grid(_product_of(it), geobox, opts) for it in items]
    time = pd.Index([pd.Timestamp(it.datetime).tz_localize(None) for it in items], name="time")
    values = {p: xr.concat([d[0][p] for d in dates], time) for p in opts.polarisations}
    mask = xr.concat([d[1] for d in dates], time)
    meta = {
        "orbit_state": "sat:orbit_state",
        "relative_orbit": "sat:relative_orbit",
        "platform": "platform",
    }
    coords: dict[str, Any] = {}
    for name, key in meta.items():
        vals = [it.properties.get(key) for it in items]
        if all(v is not None for v in vals):
            coords[name] = ("time", np.asarray(vals))
    coords["item_ids"] = ("time", np.asarray([it.id for it in items]))
    return values, mask, coords


def prepare_s1(
    items: Any,
    *,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    options: SarOptions | None = None,
    geocoding: Any = None,
    **overrides: Any,
) -> xr.Dataset:
    """Sentinel-1 as analysis-ready backscatter on the grid: geocoded items or GRD SAFEs.

    Parameters
    ----------
    items : SearchResult, sequence of pystac.Item, SafeProduct or SAFE paths
        Sentinel-1 items whose polarisation assets hold geocoded linear sigma0 (float32,
        NaN = no data), e.g. ``catalog.search(..., collections="sentinel-1-grd")``; or
        GRD SAFE products (:func:`~mus_lab.ard.open_safe`, or paths of ``.SAFE`` folders /
        zips), calibrated (``calibration``, ``noise``), geocoded by range-Doppler
        (:func:`~mus_lab.ard.geocode_s1`) and stacked in time.
    geobox : odc.geo.geobox.GeoBox, optional
        Target grid; pass the Sentinel-2 ARD's (``cube.geobox_of(s2)``) to share its grid.
    bbox : sequence of float, optional
        Without ``geobox``: the Sentinel-2 10 m grid of this bbox (default: of the items).
    options : SarOptions, optional
        Polarisations, speckle filter and window, dB, chunks (default ``SarOptions()``).
    geocoding : S1Geocoding, optional
        SAFE products only: DEM, geoid, terrain flattening (gamma0 RTC), border noise.
    **overrides
        Fields of :class:`SarOptions` replacing those of ``options``
        (``prepare_s1(items, speckle="lee", db=True)``). Speckle filtering runs on the grid.

    Returns
    -------
    xarray.Dataset
        One float32 variable per polarisation, ``valid`` (bool) and ``quality`` (uint8 bits:
        nodata, unusable; layover and shadow from a DEM), ``orbit_state`` / ``relative_orbit``
        on ``time``; lazy. SAFEs with a DEM add ``local_incidence_angle``.

    Raises
    ------
    ARDError
        A bad option, or ``calibration`` / ``noise`` asked of already calibrated items.
    BackscatterInputError
        Items whose assets hold digital numbers (an :class:`ARDError`): pass the SAFE.
    RadarGeometryError
        Items or arrays in radar geometry (an :class:`ARDError`): pass the SAFE.
    MissingCalibrationError
        A SAFE without its calibration annotation (an :class:`ARDError`).
    SpeckleFilterError
        Unknown speckle filter or a bad window (an :class:`ARDError`).
    AssetError
        An item lacks a polarisation asset.

    Examples
    --------
    >>> from mus_lab import catalog
    >>> from mus_lab.ard import prepare_s1
    >>> s1 = catalog.search(tiny.catalog_path, collections="sentinel-1-grd")
    >>> ds = prepare_s1(s1, speckle="lee", db=True)
    >>> ds.vv.dims, ds.vv.dtype, ds.attrs["speckle"]
    (('time', 'y', 'x'), dtype('float32'), 'lee')
    """
    opts = with_overrides(SarOptions, options, overrides, where="prepare_s1")
    from mus_lab.ard._s1_ard import is_safe_input, prepare_safes

    if is_safe_input(items):
        return prepare_safes(items, geobox=geobox, bbox=bbox, opts=opts, geocoding=geocoding)
    _refuse_not_items(items)
    if geocoding is not None:
        raise ARDError(
            "geocoding applies to SAFE products (open_safe(path)); these items are already "
            "geocoded: leave geocoding=None."
        )
    if opts.calibration != "sigma0" or not opts.noise:
        raise ARDError(
            "prepare_s1 takes geocoded sigma0 items, calibrated and denoised by their "
            "producer: leave calibration='sigma0' and noise=True (they apply to products "
            "calibrated here, see prepare_rcm)."
        )
    return _prepare(
        items, _geocoded, geobox=geobox, bbox=bbox, opts=opts, attrs={"product": "s1_sigma0_ard"}
    )


def prepare_rcm(
    items: Any,
    *,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    options: SarOptions | None = None,
    **overrides: Any,
) -> xr.Dataset:
    """RCM product items, calibrated in native geometry, as analysis-ready data on the grid.

    Each product (any :class:`~mus_lab.ard.SarProduct`) is calibrated, denoised and
    speckle-filtered in its own geometry, where the LUTs and speckle statistics hold, then
    reprojected onto the grid (bilinear; the mask nearest). Geocoded products (GCC/GCD) use
    their imagery's CRS; ground-range products (GRD, folder or zip) are located by their
    product.xml tie points (:meth:`~mus_lab.ard.RcmProduct.gcp_geobox`: GDAL's GCP
    transformer, per output chunk; flat terrain, no DEM). CEOS-ARD ``rcm-ard`` items go
    through :func:`~mus_lab.ard.prepare_rcm_ard` instead.

    Parameters
    ----------
    items : SearchResult or sequence of pystac.Item
        RCM items with a ``product`` asset (``metadata/product.xml``, or the product's
        zip), e.g. ``catalog.search(..., collections="rcm-grd")``.
    geobox : odc.geo.geobox.GeoBox, optional
        Target grid; pass the Sentinel-2 ARD's to share its grid.
    bbox : sequence of float, optional
        Without ``geobox``: the Sentinel-2 10 m grid of this bbox (default: of the items).
    options : SarOptions, optional
        Polarisations, calibration, noise removal, speckle filter and window, dB, chunks
        (the block size of the native read); default ``SarOptions()``.
    **overrides
        Fields of :class:`SarOptions` replacing those of ``options``
        (``prepare_rcm(items, calibration="gamma0", db=True)``).

    Returns
    -------
    xarray.Dataset
        As :func:`prepare_s1`: float32 per polarisation, ``valid``, ``quality``, ``orbit_state`` /
        ``relative_orbit`` on ``time``; lazy.

    Raises
    ------
    ARDError
        A bad option, an item without ``product`` asset (or a CEOS-ARD item).
    RcmGeolocationError
        Imagery without CRS and fewer than 3 tie points (an :class:`ARDError`).
    SpeckleFilterError
        Unknown speckle filter or a bad window (an :class:`ARDError`).
    ProductFileError
        A LUT, noise or imagery file named in product.xml is missing (an :class:`ARDError`).

    Examples
    --------
    >>> from mus_lab import catalog
    >>> from mus_lab.ard import SarOptions, prepare_rcm
    >>> rcm = catalog.search(tiny.catalog_path, collections="rcm-grd")
    >>> ds = prepare_rcm(rcm, options=SarOptions(calibration="gamma0", db=True))
    >>> ds.attrs["product"], sorted(ds.data_vars)
    ('rcm_gamma0_ard', ['quality', 'valid', 'vh', 'vv'])
    """
    opts = with_overrides(SarOptions, options, overrides, where="prepare_rcm")
    attrs = {
        "product": f"rcm_{opts.calibration}_ard",
        "calibration": opts.calibration,
        "noise_removed": int(opts.noise),
    }
    return _prepare(items, _products, geobox=geobox, bbox=bbox, opts=opts, attrs=attrs)
