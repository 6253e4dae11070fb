"""Orchestration: write every raster, the STAC catalog and ``scenario.json``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from affine import Affine
from tqdm.auto import tqdm

from mus_lab.sample import _io, _params, _stac
from mus_lab.sample._context import Ctx, when
from mus_lab.sample._landscape import ROWS_PER_BLOCK, WATER, Landscape, build_landscape, flood_peak
from mus_lab.sample._optical import BANDS, draw_date, s2_block, sun_angles
from mus_lab.sample._params import LEGEND, MGRS, MGRS_TILE, RCM_EPSG, UTM_EPSG, X0, Y0, Params
from mus_lab.sample._pheno import draw_traits
from mus_lab.sample._polygons import reference_polygons
from mus_lab.sample._sar_writer import write_sar

__all__ = ["build"]

UTM = f"EPSG:{UTM_EPSG}"
RCM = f"EPSG:{RCM_EPSG}"
_FLOOD_CLASSES = [
    {"value": 0, "name": "dry", "description": "dry land"},
    {"value": 1, "name": "flood", "description": "flood water (not permanent water)"},
    {"value": 2, "name": "permanent-water", "description": "permanent water"},
]


def _write_s2(ctx: Ctx, day: dt.date, index: int, peak: dt.date) -> pystac.Item:
    land, n = ctx.land, ctx.land.size
    state = draw_date(ctx.p.seed, n, day, index, land.water_level(day, peak), ctx.p.realism)
    pb, offset = _params.baseline(day)
    sat = "S2A" if index % 2 == 0 else "S2B"
    item_id = f"{sat}_{MGRS_TILE}_{day:%Y%m%d}_0_L2A"
    folder = ctx.folder("sentinel-2-l2a", item_id)
    writers: dict[str, _io.CogWriter] = {}
    for key, *_, res in (*BANDS, ("scl", "SCL", 0, 0, 20)):
        side = n if res == 10 else n // 2
        t20 = ctx.s2_transform @ Affine.scale(res / 10)
        writers[key] = _io.CogWriter(
            folder / f"{key}.tif",
            width=side,
            height=side,
            dtype="uint8" if key == "scl" else "uint16",
            crs=UTM,
            transform=t20,
            nodata=0,
            categorical=key == "scl",
        )
    counts = np.zeros(12, np.int64)
    for r0 in range(0, n, ROWS_PER_BLOCK):
        r1 = min(n, r0 + ROWS_PER_BLOCK)
        refl, scl = s2_block(land, ctx.traits, state, slice(r0, r1))
        scl20 = scl[::2, ::2]
        empty = scl20 == 0
        counts += np.bincount(scl20.ravel(), minlength=12)
        for b, (key, *_, res) in enumerate(BANDS):
            if res == 10:
                writers[key].write(r0, _io.as_uint16_dn(refl[b], offset))
            else:
                r20 = refl[b].reshape((r1 - r0) // 2, 2, n // 2, 2).mean(axis=(1, 3))
                r20[empty] = 0.0
                writers[key].write(r0 // 2, _io.as_uint16_dn(r20, offset))
        writers["scl"].write(r0 // 2, scl20)
    assets = {}
    for key, cname, wl, fwhm, res in (*BANDS, ("scl", "SCL", None, None, 20)):
        side = n if res == 10 else n // 2
        is_scl = key == "scl"
        assets[key] = _stac.asset(
            writers[key].close(),
            title=f"{cname} ({res} m)" if not is_scl else "Scene classification map (SCL)",
            epsg=UTM_EPSG,
            transform=ctx.s2_transform @ Affine.scale(res / 10),
            shape=(side, side),
            data_type="uint8" if is_scl else "uint16",
            nodata=0,
            resolution=res,
            scale=None if is_scl else 0.0001,
            offset=None if is_scl else offset,
            eo_band=None
            if is_scl
            else {
                "name": cname,
                "common_name": key.rstrip("0123456789") if key not in ("nir08",) else "nir08",
                "center_wavelength": wl,
                "full_width_half_max": fwhm,
            },
            roles=("data",) if is_scl else ("data", "reflectance"),
        )
        ctx.done()
    valid = counts[1:].sum()
    cloud = float(100.0 * counts[[8, 9, 10]].sum() / valid) if valid else 0.0
    az, elev = sun_angles(day)
    props = {
        "platform": "sentinel-2a" if sat == "S2A" else "sentinel-2b",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "gsd": 10,
        "eo:cloud_cover": round(cloud, 4),
        "s2:processing_baseline": pb,
        "s2:mgrs_tile": MGRS_TILE,
        "mgrs:utm_zone": MGRS["utm_zone"],
        "mgrs:latitude_band": MGRS["latitude_band"],
        "mgrs:grid_square": MGRS["grid_square"],
        "s2:nodata_pixel_percentage": round(float(100 * counts[0] / counts.sum()), 4),
        "s2:snow_ice_percentage": round(float(100 * counts[11] / max(valid, 1)), 4),
        "view:sun_azimuth": round(float(az), 3),
        "view:sun_elevation": round(float(elev), 3),
        "sat:orbit_state": "descending",
        "sat:relative_orbit": 11 if sat == "S2A" else 111,
        "sat:absolute_orbit": 30000 + 143 * index,
        "proj:epsg": UTM_EPSG,
        **ctx.proc,
    }
    return _tile_item(ctx, item_id, when(day, 15.6), "sentinel-2-l2a", assets, properties=props)


def _tile_item(
    ctx: Ctx,
    item_id: str,
    datetime: dt.datetime,
    collection: str,
    assets: dict[str, pystac.Asset],
    *,
    properties: dict[str, Any] | None = None,
) -> pystac.Item:
    """An item over the whole tile (every optical-grid item of the scenario covers it);
    ``properties`` default to the processing properties."""
    n = ctx.land.size
    geom, bbox = _stac.footprint(UTM, (X0, Y0 - 10 * n, X0 + 10 * n, Y0))
    props = dict(ctx.proc) if properties is None else properties
    return _stac.make_item(
        item_id,
        datetime,
        collection=collection,
        geometry=geom,
        bbox=bbox,
        properties=props,
        assets=assets,
    )


def _write_rows(
    ctx: Ctx,
    path: Path,
    fn: Callable[[slice], np.ndarray],
    dtype: str,
    nodata: float | None,
    categorical: bool,
) -> Path:
    n = ctx.land.size
    writer = _io.CogWriter(
        path,
        width=n,
        height=n,
        dtype=dtype,
        crs=UTM,
        transform=ctx.s2_transform,
        nodata=nodata,
        categorical=categorical,
    )
    for r0 in range(0, n, ROWS_PER_BLOCK):
        rows = slice(r0, min(n, r0 + ROWS_PER_BLOCK))
        writer.write(r0, fn(rows).astype(dtype))
    ctx.done()
    return writer.close()


def _s2_asset(ctx: Ctx, path: Path, title: str, dtype: str, nodata: Any, **kw: Any) -> pystac.Asset:
    n = ctx.land.size
    return _stac.asset(
        path,
        title=title,
        epsg=UTM_EPSG,
        transform=ctx.s2_transform,
        shape=(n, n),
        data_type=dtype,
        nodata=nodata,
        resolution=10,
        **kw,
    )


def _flood_rows(land: Landscape, level: float, rows: slice) -> np.ndarray:
    return land.flood(rows, level)


def _write_truth(ctx: Ctx, peak: dt.date, sar_days: list[dt.date]) -> dict[str, list]:
    land, n = ctx.land, ctx.land.size
    mid = when(ctx.p.start + (ctx.p.end - ctx.p.start) / 2, 12)
    folder = ctx.folder("landcover-truth", f"landcover_{MGRS_TILE}")
    classes = [{"value": k, "name": v} for k, v in LEGEND.items()]
    lc_path = _write_rows(
        ctx, folder / "landcover.tif", lambda r: land.landcover[r], "uint8", 0, True
    )
    rw_path = _write_rows(
        ctx,
        folder / "reference_water.tif",
        lambda r: land.landcover[r] == WATER,
        "uint8",
        255,
        True,
    )
    gdf = reference_polygons(land, ctx.s2_transform, UTM, label_noise=ctx.p.realism.label_noise)
    gpkg = folder / "polygons.gpkg"
    gdf.to_file(gpkg, layer="reference", driver="GPKG")
    ctx.done()
    assets = {
        "landcover": _s2_asset(ctx, lc_path, "Land-cover truth", "uint8", 0, classes=classes),
        "reference_water": _s2_asset(
            ctx,
            rw_path,
            "Permanent water (1)",
            "uint8",
            255,
            classes=[{"value": 0, "name": "not-water"}, {"value": 1, "name": "permanent-water"}],
        ),
        "polygons": pystac.Asset(
            str(gpkg),
            title="Reference polygons (layer 'reference')",
            media_type=_stac.GPKG,
            roles=["data", "labels"],
        ),
    }
    truth = [_tile_item(ctx, f"landcover_{MGRS_TILE}", mid, "landcover-truth", assets)]
    floods = []
    for day in sar_days:
        level = land.water_level(day, peak)
        item_id = f"flood_{MGRS_TILE}_{day:%Y%m%d}"
        path = _write_rows(
            ctx,
            ctx.folder("flood-truth", item_id) / "flood.tif",
            functools.partial(_flood_rows, land, level),
            "uint8",
            255,
            True,
        )
        asset = _s2_asset(ctx, path, "Flood truth", "uint8", 255, classes=_FLOOD_CLASSES)
        props = {"mus_lab:water_level_m": round(level, 3), **ctx.proc}
        floods.append(
            _tile_item(
                ctx, item_id, when(day, 12), "flood-truth", {"flood": asset}, properties=props
            )
        )
    dem_n = -(-n // 3)
    idx = np.clip(3 * np.arange(dem_n) + 1, 0, n - 1)
    dem = land.hand[np.ix_(idx, idx)] + land.design.river_elevation(idx + 0.5)[None, :]
    dem_tr = ctx.s2_transform @ Affine.scale(3)
    folder = ctx.folder("dem", f"dem_{MGRS_TILE}")
    dem_path = _io.write_array(
        folder / "dem.tif", dem.astype(np.float32), crs=UTM, transform=dem_tr, nodata=-9999.0
    )
    ctx.done()
    dem_asset = _stac.asset(
        dem_path,
        title="Elevation (m)",
        epsg=UTM_EPSG,
        transform=dem_tr,
        shape=(dem_n, dem_n),
        data_type="float32",
        nodata=-9999.0,
        resolution=30,
        unit="m",
        roles=("data", "elevation"),
    )
    dem_item = _tile_item(ctx, f"dem_{MGRS_TILE}", mid, "dem", {"dem": dem_asset})
    return {"landcover-truth": truth, "flood-truth": floods, "dem": [dem_item]}


def build(tmp: Path, final: Path, p: Params, *, progress: bool, version: str) -> None:
    """Write the whole scenario into ``tmp`` (to be renamed to ``final``)."""
    land = build_landscape(p.size, p.seed)
    traits = draw_traits(p.seed, int(land.parcel.max()) + 1, p.realism)
    peak = flood_peak(p.start, p.end)
    dates = {s: p.dates(s) for s in _params.SENSORS}
    sar_days = sorted(set(dates["s1"]) | set(dates["rcm"]))
    total = 11 * len(dates["s2"]) + 2 * (len(dates["s1"]) + len(dates["rcm"])) + len(sar_days) + 4
    with tqdm(total=total, disable=not progress, desc="mus_lab.sample", unit="raster") as bar:
        ctx = Ctx(tmp, p, land, traits, bar, version)
        items: dict[str, list[pystac.Item]] = _write_truth(ctx, peak, sar_days)
        items["sentinel-2-l2a"] = [_write_s2(ctx, d, i, peak) for i, d in enumerate(dates["s2"])]
        items["sentinel-1-grd"] = [
            write_sar(ctx, "s1", d, i, peak) for i, d in enumerate(dates["s1"])
        ]
        items["rcm-grd"] = [write_sar(ctx, "rcm", d, i, peak) for i, d in enumerate(dates["rcm"])]
    _stac.build_catalog(ctx.cat, items, version=version)
    flood_dates = [d.isoformat() for d in sar_days if land.water_level(d, peak) > 0]
    n = p.size
    _, bbox = _stac.footprint(UTM, (X0, Y0 - 10 * n, X0 + 10 * n, Y0))
    truth = f"catalog/landcover-truth/landcover_{MGRS_TILE}"
    doc = {
        "generator": {"name": "mus_lab.sample", "version": version},
        "parameters": {
            "size": n,
            "seed": p.seed,
            "start": p.start.isoformat(),
            "end": p.end.isoformat(),
            "s2_every_days": p.s2_every_days,
            "s1_every_days": p.s1_every_days,
            "rcm_every_days": p.rcm_every_days,
            "sensors": list(p.sensors),
            "realism": {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(p.realism).items()
            },
        },
        "legend": {str(k): v for k, v in LEGEND.items()},
        "dates": {s: [d.isoformat() for d in v] for s, v in dates.items()},
        "grid": {
            "crs": UTM,
            "transform": list(ctx.s2_transform)[:6],
            "shape": [n, n],
            "resolution": 10.0,
            "mgrs_tile": MGRS_TILE,
        },
        "bbox": bbox,
        "flood": {
            "peak": peak.isoformat(),
            "max_level_m": round(land.flood_max, 3),
            "dates": flood_dates,
        },
        "paths": {
            "catalog": "catalog/catalog.json",
            "landcover": f"{truth}/landcover.tif",
            "reference_water": f"{truth}/reference_water.tif",
            "polygons": f"{truth}/polygons.gpkg",
        },
        "final_path": os.fspath(final),
    }
    (tmp / "scenario.json").write_text(json.dumps(doc, indent=2))
