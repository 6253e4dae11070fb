"""Sentinel-1 GRD SAFE products to the SAR ARD dataset of :func:`mus_lab.ard.prepare_s1`.

Each product is calibrated, denoised and geocoded onto the grid (:func:`geocode_s1`), then
speckle-filtered on the grid (as the geocoded items are), stacked in time, and given the
one validity convention of ARD: ``valid`` and ``quality`` (nodata, unusable, layover,
shadow bits of :data:`mus_lab.contracts.SAR_QUALITY_BITS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from odc.geo.geobox import GeoBox

from mus_lab.ard._lineage import grid_record
from mus_lab.ard._options import native_chunks
from mus_lab.ard._publish import sar_validity
from mus_lab.ard._s1 import SafeProduct, open_safe
from mus_lab.ard._s1_geocode import S1Geocoding, default_geobox, geocode_s1
from mus_lab.ard._sar_common import to_db
from mus_lab.contracts import RECIPE_ATTR

__all__ = ["is_safe_input", "prepare_safes"]

#: First absolute orbit of relative orbit 1, by mission (ESA: relative = (abs - k) % 175 + 1).
_ORBIT_OFFSET = {"S1A": 73, "S1B": 27}


def _is_safe_like(x: Any) -> bool:
    if isinstance(x, SafeProduct):
        return True
    if isinstance(x, str | Path):
        p = Path(x)
        return p.suffix.upper() in (".SAFE", ".ZIP")
    return False


def is_safe_input(items: Any) -> bool:
    """Whether ``items`` are SAFE products (or their paths) rather than STAC items."""
    if _is_safe_like(items):
        return True
    if isinstance(items, list | tuple) and items:
        return all(_is_safe_like(x) for x in items)
    return False


def _start(prod: SafeProduct) -> pd.Timestamp:
    parts = prod.name.split("_")
    for p in parts:
        if len(p) == 15 and p[8] == "T" and p[:8].isdigit():
            return pd.Timestamp(p)
    cal = prod.read_calibration(prod.polarisations[0])
    return pd.Timestamp(cal.start_time)


def _relative_orbit(prod: SafeProduct) -> int | None:
    parts = prod.name.split("_")
    mission = parts[0].upper()
    absolute = next((p for p in parts if len(p) == 6 and p.isdigit()), None)
    if absolute is None or mission not in _ORBIT_OFFSET:
        return None
    return (int(absolute) - _ORBIT_OFFSET[mission]) % 175 + 1


def prepare_safes(
    safes: Any,
    *,
    geobox: GeoBox | None,
    bbox: Sequence[float] | None,
    opts: Any,
    geocoding: S1Geocoding | None,
) -> xr.Dataset:
    """The body of :func:`~mus_lab.ard.prepare_s1` for SAFE products (see there)."""
    from mus_lab import cube
    from mus_lab.ard._sar_prepare import _speckled

    given = [safes] if _is_safe_like(safes) else list(safes)
    prods = [p if isinstance(p, SafeProduct) else open_safe(p) for p in given]
    prods.sort(key=_start)
    if geobox is None:
        geobox = cube.reference_geobox(bbox=bbox) if bbox is not None else default_geobox(prods)
    chunks = native_chunks(opts.chunks)
    dates = [
        geocode_s1(
            p,
            geobox,
            polarisations=opts.polarisations,
            calibration=opts.calibration,
            noise=opts.noise,
            geocoding=geocoding,
            chunks=chunks,
        )
        for p in prods
    ]
    time = pd.Index([_start(p) for p in prods], name="time")
    out: dict[str, xr.DataArray] = {}
    for pol in opts.polarisations:
        arr = xr.concat([_speckled(d[pol], opts) for d in dates], time).astype(np.float32)
        units = "linear power"
        if opts.db:
            arr = to_db(arr)
            units = "dB"
        out[pol] = arr.assign_attrs(units=units, polarisation=pol.upper())
    mask = xr.concat([d["mask"] for d in dates], time)
    terrain = xr.concat([d["terrain"] for d in dates], time)
    ds = xr.Dataset(out)
    valid, quality = sar_validity(mask)
    ds["valid"] = (valid & (terrain == 0)).rename("valid")
    ds["quality"] = (quality | terrain).astype(np.uint8).assign_attrs(quality.attrs)
    if "local_incidence_angle" in dates[0]:
        ds["local_incidence_angle"] = xr.concat([d["local_incidence_angle"] for d in dates], time)
    opts_geo = geocoding or S1Geocoding()
    ds.attrs = {
        "product": f"s1_{opts.calibration}_ard",
        "calibration": opts.calibration,
        "noise_removed": int(opts.noise),
        "terrain_flattened": int(opts_geo.terrain_flattening),
        "geocoding": "range-doppler",
        "dem": dates[0].attrs["dem"],
        "speckle": opts.speckle or "none",
        "resampling": "bilinear",
        "db": int(opts.db),
    }
    ds.attrs[RECIPE_ATTR] = {
        "catalog": None,
        "grid": grid_record(geobox),
        "radar_sources": [p.name for p in prods],
        "speckle": opts.speckle,
    }
    coords: dict[str, Any] = {
        "orbit_state": ("time", np.asarray([d.attrs["pass_direction"] for d in dates])),
        "platform": (
            "time",
            np.asarray([f"sentinel-1{p.name[2].lower()}" for p in prods]),
        ),
        "item_ids": ("time", np.asarray([p.name for p in prods])),
    }
    rel = [_relative_orbit(p) for p in prods]
    if all(r is not None for r in rel):
        coords["relative_orbit"] = ("time", np.asarray(rel))
    return ds.assign_coords(coords)
