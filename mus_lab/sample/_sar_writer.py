"""Writing one Sentinel-1 or RCM item on the sensor's own grid.

Sentinel-1 items hold VV and VH geocoded sigma0 COGs (float32, linear). RCM items hold an
RCM product folder as the CSA distributes it (``metadata/product.xml``, calibration LUTs
and noise levels, ``imagery/<POL>.tif`` as uint16 magnitude DN), geocoded on EPSG:3978 at
16 m (a "GCD"-like product): calibrating the DN with the sigma-nought LUT and removing the
noise gives back the generator's sigma0 within quantisation.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pystac
from affine import Affine
from pyproj import Transformer

from mus_lab.sample import _io, _stac
from mus_lab.sample._context import Ctx, when
from mus_lab.sample._fields import pixel_centres
from mus_lab.sample._landscape import ROWS_PER_BLOCK
from mus_lab.sample._params import MGRS_TILE, RCM_EPSG, UTM_EPSG, X0, Y0
from mus_lab.sample._sar import draw_sar_date, sar_values
from mus_lab.testing import write_rcm_product

__all__ = ["write_sar"]

UTM = f"EPSG:{UTM_EPSG}"
RCM = f"EPSG:{RCM_EPSG}"
#: Sigma-nought LUT gains across the RCM columns (DN**2 ~ sigma0 * gain) and noise floor (dB).
RCM_GAINS = (0.8e7, 1.2e7)
RCM_NOISE_DB = (-31.0, -29.0)


def _sar_grid(sensor: str, n: int) -> tuple[str, int, Affine, int, int]:
    if sensor == "s1":  # 20 m, origin shifted 5 m off the S2 grid
        return (
            UTM,
            UTM_EPSG,
            Affine(20.0, 0.0, X0 - 5.0, 0.0, -20.0, Y0 + 5.0),
            n // 2 + 1,
            n // 2 + 1,
        )
    fwd = Transformer.from_crs(UTM, RCM, always_xy=True)
    left, bottom, right, top = fwd.transform_bounds(
        X0, Y0 - 10 * n, X0 + 10 * n, Y0, densify_pts=41
    )
    left, top = np.floor(left / 16) * 16, np.ceil(top / 16) * 16
    w, h = int(np.ceil((right - left) / 16)), int(np.ceil((top - bottom) / 16))
    return RCM, RCM_EPSG, Affine(16.0, 0.0, left, 0.0, -16.0, top), w, h


def write_sar(ctx: Ctx, sensor: str, day: dt.date, index: int, peak: dt.date) -> pystac.Item:
    land, n = ctx.land, ctx.land.size
    state = draw_sar_date(ctx.p.seed, n, sensor, day, index, land.water_level(day, peak))
    crs, epsg, tr, w, h = _sar_grid(sensor, n)
    asc = state.orbit_state == "ascending"
    if sensor == "s1":
        item_id = f"S1A_IW_GRDH_1SDV_{day:%Y%m%d}T{'225512' if asc else '111034'}_{MGRS_TILE}"
        collection, res = "sentinel-1-grd", 20.0
    else:
        item_id = f"RCM{1 + index % 3}_16M_GRD_{day:%Y%m%d}T{'225040' if asc else '110520'}"
        collection, res = "rcm-grd", 16.0
    folder = ctx.folder(collection, item_id)
    to_utm = Transformer.from_crs(RCM, UTM, always_xy=True)
    blocks: dict[str, list[np.ndarray]] = {"vv": [], "vh": []}
    writers = {}
    if sensor == "s1":
        writers = {
            pol: _io.CogWriter(
                folder / f"{pol}.tif",
                width=w,
                height=h,
                dtype="float32",
                crs=crs,
                transform=tr,
                nodata=float("nan"),
            )
            for pol in ("vv", "vh")
        }
    step = max(1, ROWS_PER_BLOCK // 2)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        xs = tr.c + res * pixel_centres(0, w)
        ys = tr.f - res * pixel_centres(r0, r1)
        gx, gy = np.meshgrid(xs, ys)
        if sensor == "rcm":
            gx, gy = to_utm.transform(gx, gy)
        vv, vh = sar_values(land, ctx.traits, state, (Y0 - gy) / 10.0, (gx - X0) / 10.0, r0)
        for pol, values in (("vv", vv), ("vh", vh)):
            if writers:
                writers[pol].write(r0, values)
            else:
                blocks[pol].append(values)
    assets = {}
    if writers:
        for pol, writer in writers.items():
            assets[pol] = _stac.asset(
                writer.close(),
                title=f"{pol.upper()} sigma0 (linear)",
                data_type="float32",
                nodata="nan",
                unit="1",
                roles=("data", "backscatter"),
                epsg=epsg,
                transform=tr,
                shape=(h, w),
                resolution=res,
            )
            ctx.done()
    else:
        write_rcm_product(
            folder,
            {pol.upper(): np.concatenate(b, axis=0) for pol, b in blocks.items()},
            values="sigma0",
            lut_gains=np.linspace(*RCM_GAINS, w),
            noise_db=np.linspace(*RCM_NOISE_DB, w),
            lut_step=8,
            product_id=item_id,
            product_type="GCD",
            satellite=f"RCM-{1 + index % 3}",
            beam_mode="Medium Resolution 16m",
            orbit_direction="Ascending" if asc else "Descending",
            first_line_time=f"{when(day, 22.9 if asc else 11.1):%Y-%m-%dT%H:%M:%S}.000000Z",
            pixel_spacing=res,
            line_spacing=res,
            crs=crs,
            transform=tr,
        )
        for pol in ("vv", "vh"):
            assets[pol] = _stac.asset(
                folder / "imagery" / f"{pol.upper()}.tif",
                title=f"{pol.upper()} magnitude DN (calibrate with metadata/calibration LUTs)",
                data_type="uint16",
                nodata=0,
                roles=("data", "backscatter"),
                media_type=_stac.GEOTIFF,
                epsg=epsg,
                transform=tr,
                shape=(h, w),
                resolution=res,
            )
            ctx.done()
        assets["product"] = pystac.Asset(
            str(folder / "metadata" / "product.xml"),
            title="RCM product.xml (calibration LUTs and noise levels in metadata/calibration)",
            media_type="application/xml",
            roles=["metadata"],
        )
    geom, bbox = _stac.footprint(crs, (tr.c, tr.f - res * h, tr.c + res * w, tr.f))
    base = {
        "s1": ("sentinel-1a", "sentinel-1", ["c-sar"], "IW", 5.405),
        "rcm": (f"rcm-{1 + index % 3}", "rcm", ["sar"], "16M", 5.405),
    }[sensor]
    days = (day - dt.date(2014, 4, 3)).days
    props = {
        "platform": base[0],
        "constellation": base[1],
        "instruments": base[2],
        "sar:instrument_mode": base[3],
        "sar:frequency_band": "C",
        "sar:center_frequency": base[4],
        "sar:polarizations": ["VV", "VH"],
        "sar:product_type": "GRD",
        "sar:resolution_range": res,
        "sar:resolution_azimuth": res,
        "sar:looks_equivalent_number": 4.4,
        "sat:orbit_state": state.orbit_state,
        "sat:relative_orbit": state.relative_orbit,
        "sat:absolute_orbit": 73 + state.relative_orbit - 1 + 175 * (days // 12),
        "view:incidence_angle": state.incidence,
        "proj:epsg": epsg,
        **ctx.proc,
    }
    hour = 22.9 if asc else 11.1
    return _stac.make_item(
        item_id,
        when(day, hour),
        collection=collection,
        geometry=geom,
        bbox=bbox,
        properties=props,
        assets=assets,
    )
