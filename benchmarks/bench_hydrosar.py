"""Flood water maps: ``flood.map_geotiff`` against ASF's HydroSAR ``make_water_map`` on one scene.

The scene is ``bench_flood.py``'s synthetic post-event SAR (VV and VH in dB, river network,
lakes, a flood, Gamma speckle of a filtered image), so its water is known pixel by pixel.
HydroSAR (``hydrosar`` on PyPI, the open implementation of the same adaptive EM-threshold
approach, refined by fuzzy logic) wants power-scale VV and VH GeoTIFFs and a HAND raster
aligned to them; the scene has no terrain, so HAND is a gentle ramp from 1 m (west) to 3 m
(east) with 0.3 m undulations, unrelated to the water (HydroSAR refuses an all-zero HAND as "all water" and a constant
one breaks its fuzzy membership; under 15 m every tile passes its HAND screen, and the HAND and
slope memberships barely vary, so they neither help nor hurt). Ours gets the same VV/VH, in dB, without
a HAND raster: once SAR alone (``mus-lab flood map --sar``) and once with the pre-event image as
reference (its default consensus with change detection). Each case runs in its own process,
timed and with its peak RSS polled (``_common.run_child``); CSI against the scene's water.

HydroSAR runs in its own environment (it needs the GDAL Python bindings, which PyPI has only
as a source package built against the system GDAL)::

    apt-get install -y libgdal-dev
    python3 -m venv /tmp/hydrosar && P=/tmp/hydrosar/bin/python
    uv pip install --python $P setuptools wheel numpy
    uv pip install --python $P --no-build-isolation "gdal==$(gdal-config --version)"
    uv pip install --python $P hydrosar asf_tools

(without ``--no-build-isolation`` GDAL builds without its numpy module and HydroSAR fails).

Usage: ``python benchmarks/bench_hydrosar.py --hydrosar-python /tmp/hydrosar/bin/python
[--size 4000] [--workdir DIR] [--json FILE]``. Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from _common import print_table, run_child, write_report
from bench_flood import make_scene, measure, truth_csi

HAND_M, HAND_RISE_M = 1.0, 2.0  # a gentle west-east ramp: the synthetic scene has no DEM

HYDROSAR = r"""
import json, sys, time
from hydrosar.water_map import make_water_map
t0 = time.perf_counter()
make_water_map(sys.argv[1], sys.argv[2], sys.argv[3], hand_raster=sys.argv[4])
print(json.dumps({"wall_s": time.perf_counter() - t0}))
"""


def hydrosar_inputs(post: Path, folder: Path) -> tuple[Path, Path, Path]:
    """Write VV and VH in power scale and a ramp HAND raster beside ``post`` (block by block)."""
    import rasterio

    paths = [folder / f"{post.stem}_{name}.tif" for name in ("vv_power", "vh_power", "hand")]
    if all(p.exists() for p in paths):
        return paths[0], paths[1], paths[2]
    with rasterio.open(post) as src:
        profile = src.profile | {"count": 1, "nodata": None}
        outs = [rasterio.open(p, "w", **profile) for p in paths]
        try:
            for _, window in src.block_windows(1):
                vv, vh = src.read((1, 2), window=window)
                outs[0].write((10 ** (vv / 10)).astype(np.float32), 1, window=window)
                outs[1].write((10 ** (vh / 10)).astype(np.float32), 1, window=window)
                rows = np.arange(window.row_off, window.row_off + window.height)[:, None]
                cols = np.arange(window.col_off, window.col_off + window.width)[None, :]
                ramp = HAND_M + HAND_RISE_M * cols / src.width + 0.3 * np.sin(rows / 40.0)
                ramp = np.broadcast_to(ramp, vv.shape)
                outs[2].write(ramp.astype(np.float32), 1, window=window)
        finally:
            for out in outs:
                out.close()
    return paths[0], paths[1], paths[2]


def initial_union(stem: Path) -> Path:
    """Union of HydroSAR's ``<stem>_VH_initial.tif`` and ``_VV_initial.tif`` (before fuzzy logic)."""
    import rasterio

    out = stem.with_name(f"{stem.name}_initial_union.tif")
    with (
        rasterio.open(f"{stem}_VH_initial.tif") as vh,
        rasterio.open(f"{stem}_VV_initial.tif") as vv,
    ):
        water = ((vh.read(1) == 1) | (vv.read(1) == 1)).astype(np.uint8)
        profile = vh.profile
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(water, 1)
    return out


def run_hydrosar(python: str, out: Path, vv: Path, vh: Path, hand: Path) -> dict[str, float]:
    import json

    cmd = [python, "-c", HYDROSAR, str(out), str(vv), str(vh), str(hand)]
    run = run_child(cmd, env=dict(os.environ), capture=True, label="hydrosar")
    inner = json.loads((run.stdout or "").strip().splitlines()[-1])
    return {"process_s": run.seconds, "wall_s": inner["wall_s"], "peak_rss_mib": run.peak_rss_mib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hydrosar-python", required=True, help="Python of HydroSAR's venv.")
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--workdir", type=Path, default=Path("bench_hydrosar_work"))
    parser.add_argument("--json", type=Path, default=Path("bench_hydrosar.json"))
    args = parser.parse_args()
    n = args.size
    post, pre = make_scene(args.workdir, n)
    vv, vh, hand = hydrosar_inputs(post, args.workdir)
    none = args.workdir / "none.tif"  # SAR alone: `pre` is not passed (see below)
    results = {
        "hydrosar": run_hydrosar(args.hydrosar_python, args.workdir / "hydrosar.tif", vv, vh, hand),
        "ours (SAR alone)": measure("ours-alone", post, none, args.workdir / "ours_alone.tif"),
        "ours (with reference)": measure("ours", post, pre, args.workdir / "ours.tif"),
    }
    files = {
        "hydrosar": "hydrosar.tif",
        "ours (SAR alone)": "ours_alone.tif",
        "ours (with reference)": "ours.tif",
    }
    csi = {k: truth_csi(args.workdir / f, n) for k, f in files.items()}
    # HydroSAR also writes its EM-threshold maps before the fuzzy refinement: their union.
    csi["hydrosar EM step (VH | VV)"] = truth_csi(initial_union(args.workdir / "hydrosar"), n)
    report = {
        "size": n,
        "results": results,
        "csi_vs_scene_water": csi,
        "ratio_wall_hydrosar_over_ours_alone": results["hydrosar"]["wall_s"]
        / results["ours (SAR alone)"]["wall_s"],
        "load_average": os.getloadavg(),
    }
    write_report(report, args.json, echo=False)
    print(f"Water maps of a {n} x {n} px scene (VV, VH), HydroSAR vs mus_lab")
    print_table(
        [("case", "<24"), ("wall s", ">10.1f"), ("peak RSS MiB", ">15.0f"), ("CSI", ">8.3f")],
        [(k, v["wall_s"], v["peak_rss_mib"], csi[k]) for k, v in results.items()],
    )
    print(f"CSI of HydroSAR's EM step alone: {csi['hydrosar EM step (VH | VV)']:.3f}")
    print(
        f"HydroSAR / ours (SAR alone) wall time: {report['ratio_wall_hydrosar_over_ours_alone']:.2f}; "
        f"load average {report['load_average'][0]:.1f}; JSON written to {args.json}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
