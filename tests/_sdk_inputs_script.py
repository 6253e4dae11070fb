"""Run in a fresh interpreter by tests/classify/test_user_inputs.py: a user's own EPSG:4326 files
opened by rioxarray, odc-stac and stackstac, with ``odc.geo.xr`` NOT imported beforehand, go
through classify.feature_cube + extract_samples and flood.map_water. Prints one JSON line."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr

from tests._geographic import (
    RES,
    series_polygons,
    stac_items,
    write_s1_chip,
    write_series,
)

warnings.simplefilter("error")  # no warning of the package's (nor any other) goes unseen
warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*not georeferenced.*")

folder = Path(sys.argv[1])
out: dict[str, object] = {"odc_preloaded": "odc.geo.xr" in sys.modules}
n = 32
dates = ["2023-04-01", "2023-05-01", "2023-06-01"]
paths = write_series(folder, n, len(dates))
sar_path = write_s1_chip(folder / "s1.tif", 64)
polys = series_polygons(n)


def rio_series() -> xr.Dataset:
    arrs = [
        rioxarray.open_rasterio(p, chunks={"y": 16, "x": 16}, masked=True).expand_dims(
            time=[np.datetime64(d, "ns")]
        )
        for p, d in zip(paths, dates, strict=True)
    ]
    return xr.concat(arrs, "time").to_dataset("band").rename({1: "red", 2: "nir"})


def odc_stac_series(items, bands):  # type: ignore[no-untyped-def]
    import odc.stac  # registers .odc itself: imported only here, after the rioxarray cases
    from odc.geo.geobox import GeoBox

    with __import__("rasterio").open(items[0].assets[bands[0]].href) as src:
        gbox = GeoBox(src.shape, src.transform, "EPSG:4326")
    return odc.stac.load(items, bands=list(bands), geobox=gbox, chunks={})


def stackstac_series(items, bands):  # type: ignore[no-untyped-def]
    import stackstac

    b = items[0].bbox
    arr = stackstac.stack(
        [i.to_dict() for i in items], assets=list(bands), epsg=4326, resolution=RES,
        bounds=tuple(b), chunksize=16, fill_value=np.nan, rescale=False,
    )  # fmt: skip
    return xr.Dataset({v: arr.sel(band=v, drop=True) for v in bands})


def samples(ds: xr.Dataset) -> list[int]:
    from mus_lab import classify

    fc = classify.feature_cube(ds.astype("float32"), ["red", "nir"])
    s = classify.extract_samples(fc, polys, label="code", name_field=None)
    return [int((s.y == c).sum()) for c in (1, 2)] + [round(float(s.X[s.y == 1, 0].mean()))]


def flood_water(ds: xr.Dataset) -> list[int]:
    from mus_lab import flood

    opts = flood.MappingOptions(methods=("threshold", "region"))
    w = flood.map_water(ds, options=opts)["water"].isel(time=0).values
    return [int((w == 1).sum()), int((w == 0).sum())]


rio = rio_series()
out["rioxarray_samples"] = samples(rio)
out["odc_after_classify"] = "odc.geo.xr" in sys.modules
sar = rioxarray.open_rasterio(sar_path, chunks={"y": 32, "x": 32}, masked=True)
sar = sar.expand_dims(time=[np.datetime64("2023-06-02", "ns")]).to_dataset("band")
out["rioxarray_flood"] = flood_water(sar.rename({1: "vv", 2: "vh"}))

items = stac_items(paths, ("red", "nir"), dates)
sar_items = stac_items([sar_path], ("vv", "vh"), ["2023-06-02"])
out["stackstac_samples"] = samples(stackstac_series(items, ("red", "nir")))
out["stackstac_flood"] = flood_water(stackstac_series(sar_items, ("vv", "vh")))
out["odc_stac_samples"] = samples(odc_stac_series(items, ("red", "nir")))
out["odc_stac_flood"] = flood_water(odc_stac_series(sar_items, ("vv", "vh")))
print(json.dumps(out))
