"""Sentinel-1 GRD SAFE: calibrate + denoise + geocode (``ard.geocode_s1``) against GDAL's GCP warp.

The scene: the real S1B IW GRDH annotation, calibration and noise over Rome
(../shared/data/s1_safe_metadata_and_small_rasters, 16705 x 26102 DN) with realistic DN
written into a copy of its measurement TIFF from a known sigma0 through the product's own
LUTs, noise and GRDH speckle (``tests/ard/_s1_safe_data.py``). ``--fractions`` picks how many
of its lines get DN (1.0 = the full scene; 0.25 = its first quarter): the output grid is the
Sentinel-2 10 m UTM grid of that part's footprint.

In one run, for each fraction, each case in its own process (wall time and peak RSS of the
process tree, polled every 20 ms), dask / GDAL on ``--threads`` threads:

* ``ours``: ``geocode_s1(safe, grid, polarisations=("vv",))`` -- sigma0 calibration, thermal
  noise removal (range x azimuth vectors), range-Doppler geocoding at the geolocation grid's
  heights, bilinear -- streamed to a float32 tiled GeoTIFF.
* ``gdal``: GDAL's warper (``gdalwarp -tps -r bilinear``, through rasterio) of the same
  calibrated product in radar geometry (float32 GeoTIFF with the annotation's 210 GCPs,
  written first by ``SafeProduct.calibrated``; that write is timed apart as
  ``calibrate_write_s``) onto the same grid. The thin-plate spline is GDAL's GCP transformer
  that honours the GCPs; its default polynomial misplaces this scene by up to 1.4 km.

Usage: ``python benchmarks/bench_s1_safe.py [--fractions 0.25 1.0] [--threads 2]
[--chunks 1024] [--workdir bench_data/s1_safe] [--data ../shared/data]``
"""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from _common import arg_parser, machine, run_child, write_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAFE_REL = (
    "s1_safe_metadata_and_small_rasters/sarsen_tests_data/"
    "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
)


class _Writer:
    """``da.store`` target writing blocks of a 2-D array into band 1 of an open rasterio file."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.lock = threading.Lock()

    def __setitem__(self, key: tuple[slice, slice], value: np.ndarray) -> None:
        from rasterio.windows import Window

        ys, xs = key
        with self.lock:
            self.ds.write(
                value.astype(np.float32),
                1,
                window=Window(xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start),
            )


def _profile(shape: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "height": shape[0],
        "width": shape[1],
        "count": 1,
        "dtype": "float32",
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "nodata": float("nan"),
        "BIGTIFF": "IF_SAFER",
        **extra,
    }


def _store(arr: Any, path: Path, profile: dict[str, Any], threads: int) -> None:
    import dask
    import dask.array as da
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **profile) as ds:
            with dask.config.set(scheduler="threads", num_workers=threads):
                da.store(arr, _Writer(ds), lock=False)  # type: ignore[arg-type]


def _grid(safe_path: Path, lines: int) -> Any:
    from rasterio.transform import GCPTransformer

    from mus_lab import cube
    from mus_lab.ard import open_safe, read_geometry

    safe = open_safe(safe_path)
    g = read_geometry(safe.read_bytes(safe.files["VV"].annotation))
    tr = GCPTransformer(g.ground_control_points(), tps=True)
    rows = np.r_[
        np.zeros(20), np.linspace(0, lines, 20), np.full(20, lines), np.linspace(0, lines, 20)
    ]
    cols = np.r_[np.linspace(0, g.number_of_samples, 20), np.zeros(20)]
    cols = np.r_[cols, np.linspace(0, g.number_of_samples, 20), np.full(20, g.number_of_samples)]
    lon, lat = tr.xy(rows, cols, offset="ul")
    return cube.reference_geobox(bbox=(min(lon), min(lat), max(lon), max(lat)))


def _case(
    case: str, safe_path: Path, fraction: float, out: Path, threads: int, chunks: int
) -> None:
    """The child process of one measurement."""
    import rasterio
    from rasterio.warp import Resampling, reproject

    from mus_lab.ard import geocode_s1, open_safe

    safe = open_safe(safe_path)
    lines = round(safe.read_annotation("VV").number_of_lines * fraction)
    grid = _grid(safe_path, lines)
    if case == "ours":
        ds = geocode_s1(safe, grid, polarisations=("vv",), chunks=chunks)
        _store(
            ds.vv.data,
            out,
            _profile(tuple(grid.shape), crs=grid.crs.wkt, transform=grid.transform),
            threads,
        )
        return
    radar = out.with_name(out.stem + "_radar.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (
            rasterio.open(radar) as src,
            rasterio.open(
                out, "w", **_profile(tuple(grid.shape), crs=grid.crs.wkt, transform=grid.transform)
            ) as dst,
        ):
            reproject(
                rasterio.band(src, 1),
                rasterio.band(dst, 1),
                gcps=src.gcps[0],
                src_crs="EPSG:4326",
                resampling=Resampling.bilinear,
                src_nodata=float("nan"),
                dst_nodata=float("nan"),
                num_threads=threads,
                warp_mem_limit=256,
                SRC_METHOD="GCP_TPS",
            )


def _calibrated_radar(
    safe_path: Path, fraction: float, out: Path, threads: int, chunks: int
) -> float:
    """Write sigma0 (our calibration + noise removal) in radar geometry with the GCPs."""
    import rasterio

    from mus_lab.ard import open_safe, read_geometry

    safe = open_safe(safe_path)
    g = read_geometry(safe.read_bytes(safe.files["VV"].annotation))
    lines = round(g.number_of_lines * fraction)
    cal = safe.calibrated("vv", chunks=chunks).isel(line=slice(0, lines)).data
    gcps = [
        type(p)(row=p.row + 0.5, col=p.col + 0.5, x=p.x, y=p.y, z=p.z, id=p.id)
        for p in g.ground_control_points()
    ]
    t0 = time.perf_counter()
    _store(cal, out, _profile((lines, g.number_of_samples)), threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(out, "r+") as ds:
            ds.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))
    return time.perf_counter() - t0


def main() -> None:
    parser = arg_parser(__doc__, workdir="bench_data/s1_safe")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--case", nargs=3, metavar=("CASE", "SAFE", "FRACTION"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.case:
        case, safe, frac = args.case
        _case(case, Path(safe), float(frac), args.out, args.threads, args.chunks)
        return

    from mus_lab import get_settings
    from tests.ard._s1_safe_data import write_safe

    src = (args.data or get_settings().real_data) / SAFE_REL
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": machine(threads=args.threads, chunks=args.chunks),
        "scene": "S1B IW GRDH 16705 x 26102 (real annotation, realistic DN), VV, 10 m UTM grid",
        "runs": [],
    }
    for frac in args.fractions:
        folder = work / f"f{frac:g}"
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        folder.mkdir()
        t0 = time.perf_counter()
        safe = write_safe(src, folder, window=(0, round(16705 * frac), 0, 26102))
        write_s = time.perf_counter() - t0
        radar = folder / "gdal_radar.tif"
        cal_s = _calibrated_radar(safe, frac, radar, args.threads, args.chunks)
        run: dict[str, Any] = {
            "fraction": frac,
            "dn_write_s": round(write_s, 1),
            "calibrate_write_s": round(cal_s, 1),
        }
        for case in ("ours", "gdal"):
            out = folder / f"{case}.tif"
            cmd = [
                sys.executable,
                __file__,
                "--case",
                case,
                str(safe),
                str(frac),
                "--out",
                str(out if case == "ours" else folder / "gdal.tif"),
                "--threads",
                str(args.threads),
                "--chunks",
                str(args.chunks),
            ]
            child = run_child(cmd, label=f"{case} {frac}")
            run[case] = {
                "wall_s": round(child.seconds, 1),
                "peak_rss_mib": round(child.peak_rss_mib),
            }
        import rasterio

        with rasterio.open(folder / "ours.tif") as a, rasterio.open(folder / "gdal.tif") as b:
            run["grid"] = [a.height, a.width]
            sa = a.read(1, out_shape=(a.height // 8, a.width // 8))
            sb = b.read(1, out_shape=(b.height // 8, b.width // 8))
        both = np.isfinite(sa) & np.isfinite(sb) & (sa > 0) & (sb > 0)
        run["median_db_difference"] = round(float(np.median(10 * np.log10(sa[both] / sb[both]))), 4)
        run["speed_vs_gdal"] = round(run["gdal"]["wall_s"] / run["ours"]["wall_s"], 2)
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
    write_report(results, work / "report.json")


if __name__ == "__main__":
    main()
