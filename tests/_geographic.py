"""Files shaped like public flood and crop datasets, on EPSG:4326, written with rasterio.

* :func:`write_s1_chip`: Sen1Floods11's ``S1Hand`` layout: one float32 GeoTIFF, band 1 VV and
  band 2 VH in dB, NaN no data, 8.983152841195214e-05° pixels (10 m at the equator).
* :func:`write_s2_chip`: Sen1Floods11's ``S2Hand`` layout: 13 int16 bands in L1C order
  (B01-B08, B8A, B09-B12), no data 0, no band descriptions.
* :func:`write_series`: one small multi-band int16 COG per date (a user's own series).

Only numpy, rasterio and shapely: usable from a fresh subprocess that imports nothing else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Sen1Floods11's pixel size (degrees).
RES = 8.983152841195214e-05
#: A chip's top-left corner (Bolivia, as in Sen1Floods11's hand-labelled chips).
ORIGIN = (-65.123456789012, -13.987654321098)
WKT_NO_AUTHORITY = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]]'
)


def water_mask(n: int) -> np.ndarray:
    """A river band and a lake: about a quarter of the chip."""
    yy, xx = np.mgrid[0:n, 0:n]
    river = np.abs(yy - n // 2 - 6 * np.sin(xx / 11)) < n // 12
    lake = (yy - n // 4) ** 2 + (xx - 3 * n // 4) ** 2 < (n // 7) ** 2
    return np.asarray(river | lake)


def _transform(shift_px: tuple[float, float] = (0.0, 0.0), rel: float = 0.0):  # type: ignore[no-untyped-def]
    from affine import Affine

    x0, y0 = ORIGIN
    res = RES * (1.0 + rel)
    return Affine(res, 0.0, x0 * (1.0 + rel), 0.0, -RES, y0) @ Affine.translation(*shift_px)


def write_s1_chip(
    path: Path,
    n: int = 128,
    *,
    seed: int = 0,
    crs: str = "EPSG:4326",
    rel: float = 0.0,
    shift_px: tuple[float, float] = (0.0, 0.0),
) -> Path:
    """float32 dB VV/VH, NaN no data (a corner), water ~-22/-29 dB, land ~-9/-16 dB."""
    import rasterio
    from rasterio.crs import CRS

    rng = np.random.default_rng(seed)
    water = water_mask(n)
    vv = np.where(water, rng.normal(-22, 1.5, (n, n)), rng.normal(-9, 2.0, (n, n)))
    vh = np.where(water, rng.normal(-29, 1.5, (n, n)), rng.normal(-16, 2.0, (n, n)))
    data = np.stack([vv, vh]).astype("float32")
    data[:, : n // 16, : n // 16] = np.nan
    profile = {
        "driver": "GTiff",
        "width": n,
        "height": n,
        "count": 2,
        "dtype": "float32",
        "crs": CRS.from_user_input(crs) if not crs.startswith("GEOGCS") else CRS.from_wkt(crs),
        "transform": _transform(shift_px, rel),
        "nodata": float("nan"),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.set_band_description(1, "VV")
        dst.set_band_description(2, "VH")
    return path


def write_s2_chip(
    path: Path,
    n: int = 128,
    *,
    seed: int = 1,
    crs: str = "EPSG:4326",
    rel: float = 0.0,
    shift_px: tuple[float, float] = (0.0, 0.0),
) -> Path:
    """13 int16 L1C bands, nodata 0 (the last rows), water bright in B03 and dark in B11."""
    import rasterio
    from rasterio.crs import CRS

    rng = np.random.default_rng(seed)
    water = water_mask(n)
    data = rng.integers(800, 3000, (13, n, n)).astype("int16")
    data[2] = np.where(water, rng.integers(900, 1100, (n, n)), rng.integers(500, 800, (n, n)))
    data[11] = np.where(water, rng.integers(100, 300, (n, n)), rng.integers(1800, 2600, (n, n)))
    data[:, -n // 16 :, :] = 0
    profile = {
        "driver": "GTiff",
        "width": n,
        "height": n,
        "count": 13,
        "dtype": "int16",
        "crs": CRS.from_user_input(crs) if not crs.startswith("GEOGCS") else CRS.from_wkt(crs),
        "transform": _transform(shift_px, rel),
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


#: Two classes of the series (code: (red, nir) reflectance x 10 000).
SERIES_CLASSES = {1: (600, 3500), 2: (1800, 2200)}


def series_truth(n: int) -> np.ndarray:
    """Class 1 on the left half, class 2 on the right half."""
    return np.where(np.arange(n)[None, :] < n // 2, 1, 2) * np.ones((n, 1), "int64")


def write_series(folder: Path, n: int = 32, dates: int = 3, *, seed: int = 2) -> list[Path]:
    """One COG per date, bands ``red`` and ``nir`` (int16, nodata 0), EPSG:4326."""
    import rasterio

    rng = np.random.default_rng(seed)
    truth = series_truth(n)
    paths = []
    for t in range(dates):
        bands = []
        for b in range(2):
            means = np.vectorize(lambda c, b=b: SERIES_CLASSES[int(c)][b])(truth)
            bands.append(means + 50 * t + rng.integers(-60, 60, (n, n)))
        path = folder / f"s2_2023-0{t + 4}-01.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=n,
            height=n,
            count=2,
            dtype="int16",
            crs="EPSG:4326",
            transform=_transform(),
            nodata=0,
            tiled=True,
            blockxsize=16,
            blockysize=16,
        ) as dst:
            dst.write(np.stack(bands).astype("int16"))
            dst.set_band_description(1, "red")
            dst.set_band_description(2, "nir")
        paths.append(path)
    return paths


def series_polygons(n: int):  # type: ignore[no-untyped-def]
    """Two reference polygons (EPSG:4326), one per class, inside the series' halves."""
    import geopandas as gpd
    from shapely.geometry import box

    x0, y0 = ORIGIN

    def cell(c0: int, r0: int, c1: int, r1: int):  # type: ignore[no-untyped-def]
        return box(x0 + c0 * RES, y0 - r1 * RES, x0 + c1 * RES, y0 - r0 * RES)

    return gpd.GeoDataFrame(
        {"code": [1, 2], "poly_id": [1, 2]},
        geometry=[cell(2, 2, n // 2 - 2, n - 2), cell(n // 2 + 2, 2, n - 2, n - 2)],
        crs="EPSG:4326",
    )


def split_bands(path: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """One single-band GeoTIFF per band of ``path`` (STAC assets hold one band each)."""
    import rasterio

    out = {}
    with rasterio.open(path) as src:
        profile = dict(src.profile, count=1)
        for i, name in enumerate(names, start=1):
            dst_path = path.with_name(f"{path.stem}_{name}.tif")
            with rasterio.open(dst_path, "w", **profile) as dst:
                dst.write(src.read(i), 1)
                dst.set_band_description(1, name)
            out[name] = dst_path
    return out


def stac_items(paths: list[Path], names: tuple[str, ...], dates: list[str]):  # type: ignore[no-untyped-def]
    """pystac Items (proj extension: EPSG, shape, transform), one per file, an asset per band."""
    import datetime as dt

    import pystac
    import rasterio

    items = []
    for path, date in zip(paths, dates, strict=True):
        assets = split_bands(path, names)
        with rasterio.open(path) as src:
            b = src.bounds
            shape, transform = [src.height, src.width], list(src.transform)[:6]
        geom = {
            "type": "Polygon",
            "coordinates": [[[b.left, b.bottom], [b.right, b.bottom], [b.right, b.top],
                             [b.left, b.top], [b.left, b.bottom]]],
        }  # fmt: skip
        item = pystac.Item(
            id=path.stem,
            geometry=geom,
            bbox=[b.left, b.bottom, b.right, b.top],
            datetime=dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC),
            properties={"proj:epsg": 4326, "proj:shape": shape, "proj:transform": transform},
            stac_extensions=["https://stac-extensions.github.io/projection/v1.1.0/schema.json"],
        )
        for name, p in assets.items():
            item.add_asset(name, pystac.Asset(href=str(p), media_type=pystac.MediaType.GEOTIFF))
        items.append(item)
    return items
