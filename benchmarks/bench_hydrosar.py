"""Flood water maps: ``flood.map_geotiff`` against ASF's HydroSAR ``make_water_map`` on one scene.

The scene is ``bench_flood.py``'s synthetic post-event SAR in its terrain variant
(``make_scene(..., terrain=True)``): VV and VH in dB, a river in a valley with its
floodplain, lakes in basins at the valley floor's level, rolling hills away from them, the
backscatter of land following the local incidence angle, and smooth dark look-alikes
(2 % of the land, anywhere, present before and after the event); ENL 17.6. Its water is
known pixel by pixel, and its DEM (``make_dem``: 30 m, 0.5 m noise) is consistent with it.
HAND is computed once from that DEM by the project's own code (``flood.terrain_from_dem``:
pyflwdir, streams draining 1 km², bilinear onto the 10 m SAR grid) and written for
HydroSAR; ours is given the DEM and computes the very same HAND (same function, inside its
timed run) and applies its exclusion (HAND > 15 m, slope > 15 deg).

HydroSAR (``hydrosar`` on PyPI, the open implementation of the same adaptive EM-threshold
approach, refined by fuzzy logic on backscatter, HAND, slope and segment size) wants
power-scale VV and VH GeoTIFFs and a HAND raster aligned to them. Cases, each in its own
process, timed, with its peak RSS polled (``_common.run_child``), all in one run:

* HydroSAR: final (fuzzy) map; its EM-threshold maps before the fuzzy step (union of VH
  and VV) are scored too, as is that union with our HAND exclusion (a diagnostic);
* ours SAR alone with the DEM (threshold + region growing), the same without the DEM,
  ours with the pre-event reference and the DEM (threshold + change + region), each of
  our voters alone, and both with the ``self_trained`` voter.

CSI (= IoU of the water class), precision and recall against the scene's water.

HydroSAR runs in its own environment (it needs the GDAL Python bindings, which PyPI has only
as a source package built against the system GDAL)::

    apt-get install -y libgdal-dev
    python3 -m venv /tmp/hydrosar && P=/tmp/hydrosar/bin/python
    uv pip install --python $P setuptools wheel numpy
    uv pip install --python $P --no-build-isolation "gdal==$(gdal-config --version)"
    uv pip install --python $P hydrosar asf_tools

(without ``--no-build-isolation`` GDAL builds without its numpy module and HydroSAR fails).

Usage: ``python benchmarks/bench_hydrosar.py --hydrosar-python /tmp/hydrosar/bin/python
[--size 3000] [--workdir DIR] [--json FILE] [--quick]`` (``--quick``: HydroSAR and ours
alone and with the reference only). Not run by the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import print_table, run_child, write_report
from bench_flood import BLOCK, make_dem, make_scene, measure, truth_scores

HYDROSAR = r"""
import json, sys, time
from hydrosar.water_map import make_water_map
t0 = time.perf_counter()
make_water_map(sys.argv[1], sys.argv[2], sys.argv[3], hand_raster=sys.argv[4])
print(json.dumps({"wall_s": time.perf_counter() - t0}))
"""


def hand_raster(dem: Path, post: Path, folder: Path) -> tuple[Path, float]:
    """HAND of ``dem`` on ``post``'s grid by ``flood.terrain_from_dem``, written as GeoTIFF;
    the seconds it took."""
    import rasterio

    from mus_lab import flood
    from mus_lab.publish import open_raster

    path = folder / f"{post.stem}_hand.tif"
    t0 = time.perf_counter()
    hand, _ = flood.terrain_from_dem(dem, open_raster(post).odc.geobox)
    seconds = time.perf_counter() - t0
    with rasterio.open(post) as src:
        profile = src.profile | {"count": 1, "nodata": None}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.nan_to_num(hand.values, nan=0.0).astype(np.float32), 1)
    return path, seconds


def hydrosar_inputs(post: Path, folder: Path) -> tuple[Path, Path]:
    """Write VV and VH in power scale beside ``post`` (block by block)."""
    import rasterio

    paths = [folder / f"{post.stem}_{name}.tif" for name in ("vv_power", "vh_power")]
    if all(p.exists() for p in paths):
        return paths[0], paths[1]
    with rasterio.open(post) as src:
        profile = src.profile | {"count": 1, "nodata": None}
        outs = [rasterio.open(p, "w", **profile) for p in paths]
        try:
            for _, window in src.block_windows(1):
                vv, vh = src.read((1, 2), window=window)
                outs[0].write((10 ** (vv / 10)).astype(np.float32), 1, window=window)
                outs[1].write((10 ** (vh / 10)).astype(np.float32), 1, window=window)
        finally:
            for out in outs:
                out.close()
    return paths[0], paths[1]


def initial_union(stem: Path, hand: Path | None = None, hand_max: float = 15.0) -> Path:
    """Union of HydroSAR's ``<stem>_VH_initial.tif`` and ``_VV_initial.tif`` (before fuzzy
    logic); with ``hand``, pixels above ``hand_max`` m of HAND set to 0."""
    import rasterio

    out = stem.with_name(f"{stem.name}_initial_union{'_hand' if hand else ''}.tif")
    with (
        rasterio.open(f"{stem}_VH_initial.tif") as vh,
        rasterio.open(f"{stem}_VV_initial.tif") as vv,
    ):
        water = (vh.read(1) == 1) | (vv.read(1) == 1)
        profile = vh.profile
    if hand is not None:
        with rasterio.open(hand) as src:
            water &= ~(src.read(1) > hand_max)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(water.astype(np.uint8), 1)
    return out


def run_hydrosar(python: str, out: Path, vv: Path, vh: Path, hand: Path) -> dict[str, float]:
    cmd = [python, "-c", HYDROSAR, str(out), str(vv), str(vh), str(hand)]
    load = os.getloadavg()[0]
    run = run_child(cmd, env=dict(os.environ), capture=True, label="hydrosar")
    inner = json.loads((run.stdout or "").strip().splitlines()[-1])
    return {
        "process_s": run.seconds,
        "wall_s": inner["wall_s"],
        "peak_rss_mib": run.peak_rss_mib,
        "load_1min": load,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hydrosar-python", required=True, help="Python of HydroSAR's venv.")
    parser.add_argument("--size", type=int, default=3000)
    parser.add_argument("--workdir", type=Path, default=Path("bench_hydrosar_work"))
    parser.add_argument("--json", type=Path, default=Path("bench_hydrosar.json"))
    parser.add_argument("--quick", action="store_true", help="HydroSAR, ours alone, ours + ref.")
    args = parser.parse_args()
    n, w = args.size, args.workdir
    post, pre = make_scene(w, n, terrain=True)
    dem = make_dem(w, n)
    vv, vh = hydrosar_inputs(post, w)
    hand, hand_s = hand_raster(dem, post, w)
    none = w / "none.tif"  # SAR alone: `pre` is not passed
    results: dict[str, dict[str, float]] = {}
    files: dict[str, str] = {}

    def ours(label: str, out: str, case: str, **kw: object) -> None:
        results[label] = measure(case, post, pre if case == "ours" else none, w / out, **kw)  # type: ignore[arg-type]
        files[label] = out

    results["hydrosar (fuzzy, final)"] = run_hydrosar(
        args.hydrosar_python, w / "hydrosar.tif", vv, vh, hand
    )
    files["hydrosar (fuzzy, final)"] = "hydrosar.tif"
    ours("ours SAR alone + DEM", "ours_alone_dem.tif", "ours-alone", dem=dem)
    ours("ours with reference + DEM", "ours_ref_dem.tif", "ours", dem=dem)
    if not args.quick:
        ours("ours SAR alone, no DEM", "ours_alone.tif", "ours-alone")
        ours("voter: threshold + DEM", "v_threshold.tif", "ours-alone", dem=dem,
             methods=("threshold",))  # fmt: skip
        ours("voter: region + DEM", "v_region.tif", "ours-alone", dem=dem, methods=("region",))
        ours("voter: change + DEM", "v_change.tif", "ours", dem=dem, methods=("change",))
        ours("ours SAR alone + self_trained + DEM", "ours_alone_st.tif", "ours-alone", dem=dem,
             methods=("threshold", "region", "self_trained"))  # fmt: skip
        ours("ours with reference + self_trained + DEM", "ours_ref_st.tif", "ours", dem=dem,
             methods=("threshold", "change", "region", "self_trained"))  # fmt: skip
    scores = {k: truth_scores(w / f, n) for k, f in files.items()}
    stem = w / "hydrosar"
    scores["hydrosar EM step (VH | VV)"] = truth_scores(initial_union(stem), n)
    scores["hydrosar EM step, HAND > 15 m excluded"] = truth_scores(initial_union(stem, hand), n)
    alone = results["ours SAR alone + DEM"]["wall_s"]
    report = {
        "size": n,
        "block": BLOCK,
        "hand_seconds": hand_s,
        "results": results,
        "scores_vs_scene_water": scores,
        "ratio_wall_hydrosar_over_ours_alone_dem": results["hydrosar (fuzzy, final)"]["wall_s"]
        / alone,
        "load_average_end": os.getloadavg(),
    }
    write_report(report, args.json, echo=False)
    print(f"Water maps of a {n} x {n} px terrain scene (VV, VH, DEM), HydroSAR vs mus_lab")
    print_table(
        [
            ("case", "<42"),
            ("wall s", ">8.1f"),
            ("peak RSS MiB", ">13.0f"),
            ("load", ">6.1f"),
            ("CSI", ">7.3f"),
            ("prec.", ">7.3f"),
            ("recall", ">7.3f"),
        ],
        [
            (k, v["wall_s"], v["peak_rss_mib"], v["load_1min"], *scores[k].values())
            for k, v in results.items()
        ]
        + [
            (k, float("nan"), float("nan"), float("nan"), *s.values())
            for k, s in scores.items()
            if k not in results
        ],
    )
    print(
        f"HAND from the DEM: {hand_s:.1f} s (inside ours' runs with a DEM; HydroSAR gets it "
        f"written). HydroSAR / ours (SAR alone + DEM) wall time: "
        f"{report['ratio_wall_hydrosar_over_ours_alone_dem']:.2f}; JSON written to {args.json}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
