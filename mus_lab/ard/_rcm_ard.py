"""RCM CEOS-ARD items (EODMS ``rcm-ard``) straight into the cube, in the ARD validity convention.

What the real items hold (EODMS ``rcm_ard_stac_example.ipynb``, executed; see
``../shared/data/eodms_real_responses``): assets ``rr`` and ``rl`` (roles ``data``,
``gamma()``: terrain-flattened gamma0 COGs, 20 m, UTM), ``rrrl`` (role ``covmat``: the
normalised covariance <RR RL*>, two bands, real then imaginary), ``data_mask`` (role
``data-mask``, the file is ``*_bitmask.tif``), ``local_inc_angle``, ``gamma_to_sigma_ratio``,
``local_contributing_area`` (the scattering area), plus metadata, thumbnails and the EULA.
Their ``raster:bands`` say ``{"nodata": 0, "sampling": "RasterPixelIsArea", "data_type":
"Float"}``: ``"Float"`` is not a STAC raster data type, and the items name only
``proj:epsg`` (no ``proj:transform`` / ``proj:shape``). :func:`prepare_rcm_ard` therefore reads
the missing grid and the real dtype from each asset's COG header (no pixel is read) before
loading through :func:`mus_lab.cube.load`.

The data mask is a bit field. The shared data does not state RCM's bit layout; the default
:data:`RCM_ARD_MASK_BITS` follows the CEOS-ARD NRB data-mask flags (bit 0 invalid / no data,
bit 1 layover, bit 2 shadow; water bits are not validity) and is an option
(``mask_bits=``) to change when a product's documentation says otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab import cube
from mus_lab.ard._lineage import search_record
from mus_lab.ard._options import Chunks, with_overrides
from mus_lab.ard._sar_common import to_db
from mus_lab.contracts import RECIPE_ATTR, SAR_QUALITY_BITS, invalid_bits
from mus_lab.errors import ARDError

__all__ = ["RCM_ARD_EXTRAS", "RCM_ARD_MASK_BITS", "RcmArdOptions", "prepare_rcm_ard"]

#: Bit of the ``data_mask`` asset -> quality bit of :data:`mus_lab.contracts.SAR_QUALITY_BITS`.
RCM_ARD_MASK_BITS: Mapping[int, str] = MappingProxyType({0: "nodata", 1: "layover", 2: "shadow"})
#: Per-pixel assets besides the backscatter that can ride along (float32 on the grid).
RCM_ARD_EXTRAS: tuple[str, ...] = (
    "local_inc_angle",
    "gamma_to_sigma_ratio",
    "local_contributing_area",
)
_NEEDED = ("rr", "rl", "data_mask")
Polarisation = Literal["rr", "rl"]


@dataclass(frozen=True)
class RcmArdOptions:
    """Options of :func:`prepare_rcm_ard`.

    Parameters
    ----------
    polarisations : tuple of {"rr", "rl"}
        Backscatter assets to load (default both).
    covariance : bool
        Also load ``rrrl`` as ``rrrl_re`` and ``rrrl_im`` (needed by
        :func:`~mus_lab.ard.compact_pol`); default False.
    extras : tuple of str
        Assets of :data:`RCM_ARD_EXTRAS` to keep (default ``("local_inc_angle",)``).
    db : bool
        Backscatter in dB (the covariance always stays linear).
    mask_bits : mapping of int to str
        Bit of ``data_mask`` -> quality bit name (default :data:`RCM_ARD_MASK_BITS`).
    chunks : int, mapping or None
        Dask chunks as :func:`mus_lab.cube.load` takes them.

    Raises
    ------
    ARDError
        An unknown polarisation, extra or quality bit name.

    Examples
    --------
    >>> RcmArdOptions(covariance=True).extras
    ('local_inc_angle',)
    >>> RcmArdOptions(extras=("slope",))
    Traceback (most recent call last):
    ...
    mus_lab.errors.ARDError: Unknown rcm-ard extra(s) ['slope']: choose among ('local_inc_angle', 'gamma_to_sigma_ratio', 'local_contributing_area').
    """

    polarisations: tuple[Polarisation, ...] = ("rr", "rl")
    covariance: bool = False
    extras: tuple[str, ...] = ("local_inc_angle",)
    db: bool = False
    mask_bits: Mapping[int, str] = field(default_factory=lambda: dict(RCM_ARD_MASK_BITS))
    chunks: Chunks = None

    def __post_init__(self) -> None:
        pols = tuple(str(p).lower() for p in self.polarisations)
        if not pols or set(pols) - {"rr", "rl"}:
            raise ARDError(
                f"polarisations={self.polarisations!r}: rcm-ard items hold 'rr' and 'rl'."
            )
        object.__setattr__(self, "polarisations", pols)
        unknown = sorted(set(self.extras) - set(RCM_ARD_EXTRAS))
        if unknown:
            raise ARDError(f"Unknown rcm-ard extra(s) {unknown}: choose among {RCM_ARD_EXTRAS}.")
        bad = sorted(set(self.mask_bits.values()) - set(SAR_QUALITY_BITS))
        if bad:
            raise ARDError(
                f"mask_bits names {bad}: map data-mask bits to {sorted(SAR_QUALITY_BITS)}."
            )


def _header(href: str) -> tuple[str, tuple[int, int], list[float], int, str | None]:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(href) as src:
            crs = src.crs.to_string() if src.crs else None
            grid = (src.height, src.width), list(src.transform)[:6]
            return src.dtypes[0], grid[0], grid[1], src.count, crs
    except RasterioIOError as exc:
        raise ARDError(
            f"Cannot read the header of {href}: harvest the item's assets (or check the URL) "
            f"before preparing it ({exc})."
        ) from exc


def _with_grid(item: pystac.Item, keys: Sequence[str]) -> pystac.Item:
    """A copy of ``item`` whose assets ``keys`` say their grid and a real dtype."""
    out = copy.deepcopy(item)
    missing = [k for k in keys if k not in out.assets]
    if missing:
        raise ARDError(
            f"rcm-ard item {item.id!r} lacks asset(s) {missing} (it has {sorted(item.assets)}): "
            "search the 'rcm-ard' collection (CEOS-ARD compact-pol MLC), or drop covariance/"
            "extras that the product does not carry."
        )
    epsg = item.properties.get("proj:epsg") or item.properties.get("proj:code")
    for key in keys:
        asset = out.assets[key]
        fields_ = asset.extra_fields
        known = fields_.get("proj:transform") or item.properties.get("proj:transform")
        declared = [dict(b) for b in fields_.get("raster:bands") or []]
        if known and declared and all(_is_dtype(b.get("data_type")) for b in declared):
            if key != "rrrl" or len(declared) >= 2:
                continue  # the item says all odc-stac needs: no header read
        href = asset.get_absolute_href() or asset.href
        dtype, shape, transform, count, crs = _header(href)
        if not known:
            fields_["proj:shape"] = list(shape)
            fields_["proj:transform"] = transform
            if epsg is None and "proj:epsg" not in fields_ and "proj:code" not in fields_:
                fields_["proj:code"] = crs
        bands = declared or [{} for _ in range(count)]
        for b in bands:
            if b.get("data_type") not in (None, dtype):  # "Float" in the real items
                b["data_type"] = dtype
        if len(bands) < count:
            bands += [dict(bands[-1]) for _ in range(count - len(bands))]
        fields_["raster:bands"] = bands
    return out


def _is_dtype(name: Any) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return isinstance(name, str)


def _quality(mask: xr.DataArray, bits: Mapping[int, str]) -> xr.DataArray:
    m = mask.fillna(0).astype(np.uint16) if mask.dtype.kind == "f" else mask.astype(np.uint16)
    q = xr.zeros_like(m, dtype=np.uint8)
    for bit, name in bits.items():
        raised = (m >> int(bit)) & 1
        q = q | (raised.astype(np.uint8) << SAR_QUALITY_BITS[name]).astype(np.uint8)
    return q.astype(np.uint8)


def prepare_rcm_ard(
    items: Any,
    *,
    geobox: GeoBox | None = None,
    bbox: Sequence[float] | None = None,
    options: RcmArdOptions | None = None,
    **overrides: Any,
) -> xr.Dataset:
    """EODMS ``rcm-ard`` (CEOS-ARD compact-pol) items as analysis-ready data on the grid.

    gamma0 ``rr`` / ``rl`` are loaded bilinearly in linear power (nodata 0 -> NaN), the
    covariance ``rrrl`` optionally (real and imaginary parts), the data mask (nearest) turned
    into ``valid`` and ``quality`` of :mod:`mus_lab.contracts`, and the local incidence angle
    kept. Grids and dtypes missing from the items are read from the COG headers.

    Parameters
    ----------
    items : SearchResult or sequence of pystac.Item
        ``rcm-ard`` items (assets ``rr``, ``rl``, ``data_mask``; ``rrrl`` for the covariance).
    geobox : odc.geo.geobox.GeoBox, optional
        Target grid (pass the Sentinel-2 ARD's to share it).
    bbox : sequence of float, optional
        Without ``geobox``: the Sentinel-2 10 m grid of this bbox (default: of the items).
    options : RcmArdOptions, optional
        Polarisations, covariance, extras, dB, mask bits, chunks.
    **overrides
        Fields of :class:`RcmArdOptions` replacing those of ``options``.

    Returns
    -------
    xarray.Dataset
        ``rr``, ``rl`` (float32 gamma0), ``rrrl_re`` / ``rrrl_im`` with ``covariance=True``,
        the extras (float32), ``valid`` (bool) and ``quality`` (uint8); ``(time, y, x)``, lazy.

    Raises
    ------
    ARDError
        A bad option, an item without the needed assets, or an unreadable COG header.
    AssetError, MissingProjectionError
        As :func:`mus_lab.cube.load`.

    Examples
    --------
    >>> RcmArdOptions(polarisations=("RR",)).polarisations
    ('rr',)
    """
    from mus_lab.cube._load import _as_items

    opts = with_overrides(RcmArdOptions, options, overrides, where="prepare_rcm_ard")
    item_list = sorted(_as_items(items), key=lambda it: pd.Timestamp(it.datetime))
    keys = [*opts.polarisations, "data_mask", *opts.extras]
    if opts.covariance:
        keys.append("rrrl")
    fixed = [_with_grid(it, keys) for it in item_list]
    if geobox is None:
        geobox = cube.reference_geobox(fixed, bbox=bbox)
    bands = [k for k in keys if k != "rrrl"] + (["rrrl.1", "rrrl.2"] if opts.covariance else [])
    raw = cube.load(
        fixed,
        bands,
        geobox=geobox,
        chunks=opts.chunks,
        resampling={"data_mask": "nearest", "*": "bilinear"},
        groupby="id",
    )
    out: dict[str, xr.DataArray] = {}
    nodata_any = xr.concat([raw[p] == 0 for p in opts.polarisations], "pol").any("pol")
    nodata_any |= xr.concat([raw[p].isnull() for p in opts.polarisations], "pol").any("pol")
    for pol in opts.polarisations:
        arr = raw[pol].astype(np.float32)
        arr = arr.where(arr != 0)  # nodata 0 of the real items
        units = "linear power"
        if opts.db:
            arr, units = to_db(arr), "dB"
        out[pol] = arr.assign_attrs(units=units, polarisation=pol.upper(), calibration="gamma0")
    if opts.covariance:
        for src, name, part in (("rrrl.1", "rrrl_re", "real"), ("rrrl.2", "rrrl_im", "imaginary")):
            c = raw[src].astype(np.float32)
            out[name] = c.where(~nodata_any).assign_attrs(
                units="linear power", long_name=f"{part} part of <RR RL*>"
            )
    for extra in opts.extras:
        e = raw[extra].astype(np.float32)
        out[extra] = e.where(~nodata_any)
    if "local_inc_angle" in out:
        out["local_inc_angle"].attrs["units"] = "degree"
    quality = _quality(raw["data_mask"], opts.mask_bits)
    nodata_bit = np.uint8(1 << SAR_QUALITY_BITS["nodata"])
    quality = xr.where(nodata_any, quality | nodata_bit, quality).astype(np.uint8)
    quality.attrs = {"flag_bits": dict(SAR_QUALITY_BITS)}
    valid = (quality & np.uint8(invalid_bits("sar"))) == 0
    ds = xr.Dataset(out)
    ds["valid"], ds["quality"] = valid.rename("valid"), quality.rename("quality")
    ds.attrs = {
        "product": "rcm_gamma0_ard",
        "calibration": "gamma0",
        "source": "rcm-ard (CEOS-ARD)",
        "resampling": "bilinear",
        "speckle": "none",
        "db": int(opts.db),
        RECIPE_ATTR: search_record(items, geobox, source_key="radar_sources"),
    }
    keep = ("orbit_state", "relative_orbit", "platform", "item_ids")
    return ds.assign_coords({c: raw.coords[c] for c in keep if c in raw.coords})
