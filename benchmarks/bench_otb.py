"""Random forest side by side with the Orfeo ToolBox (IOTA²'s engine): accuracy and speed.

Same samples, same features, same held-out polygons, in one run, 2 threads each:

* the feature cube of ``bench_classify.py`` (``--size`` square x 30 dates x 10 bands = 300
  features, six classes on parcels of 40 px) is written once as a 300-band GeoTIFF;
* parcels (the "polygons") are split 50/50 with a seed; ``N_TRAIN`` training pixels are drawn
  from the training parcels, and every pixel of the other parcels validates;
* **OTB** (Debian's ``otb-bin``, ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=2``):
  ``otbcli_TrainVectorClassifier`` on the training pixels (a GeoPackage of points with one
  field per feature), RF with 100 trees, max depth 25, min 5 samples (IOTA²'s settings), then
  ``otbcli_ImageClassifier`` over the GeoTIFF;
* **ours**: ``classify.train(..., "rf")`` with the same settings on the same pixels, then
  ``classify.predict`` over the same GeoTIFF opened lazily (512 px chunks, dask threads) with
  the class map written as a COG (``mus_lab._io.write_cog``).

Both maps are scored on the validation pixels: overall accuracy and kappa, mean and standard
deviation over ``--seeds`` RF seeds (the engines alternate, so that load drifts hit both).
Speed is pixels per second of the classification step (read the GeoTIFF, classify, write the
map), averaged over the seeds; training times are reported too.

Usage: ``python benchmarks/bench_otb.py [--size 1024] [--seeds 3] [--workdir DIR] [--json FILE]``. Needs
``apt-get install otb-bin``; not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import timed, write_report

sys.path.insert(0, str(Path(__file__).parent))

from bench_classify import make_features, samples_at

THREADS = 2
N_TRAIN = 30_000
PARCEL = 40
RF = {"n_estimators": 100, "max_depth": 25, "min_samples_split": 5}


def _parcels(size: int) -> np.ndarray:
    """Parcel id of every pixel (as ``bench_classify.samples_at`` numbers them)."""
    rows, cols = np.divmod(np.arange(size * size), size)
    return (rows // PARCEL) * (size // PARCEL + 2) + cols // PARCEL


def _geobox(size: int):  # type: ignore[no-untyped-def]
    from odc.geo.geobox import GeoBox

    return GeoBox.from_bbox(
        (500_000, 5_000_000 - 10 * size, 500_000 + 10 * size, 5_000_000),
        "EPSG:32633",
        resolution=10,
    )


def write_features(X: np.ndarray, size: int, path: Path) -> None:
    import rasterio

    gb = _geobox(size)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": X.shape[1],
        "dtype": "float32",
        "crs": "EPSG:32633",
        "transform": gb.affine,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "interleave": "pixel",
        "BIGTIFF": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        step = 256
        for r0 in range(0, size, step):
            rows = slice(r0 * size, min(size, r0 + step) * size)
            block = X[rows].T.reshape(X.shape[1], -1, size)
            dst.write(block, window=((r0, r0 + block.shape[1]), (0, size)))


def write_training_points(X, labels, idx, names, path: Path) -> None:  # type: ignore[no-untyped-def]
    import geopandas as gpd
    import pandas as pd

    size = labels.shape[0]
    rows, cols = np.divmod(idx, size)
    gb = _geobox(size)
    xs, ys = gb.affine * (cols + 0.5, rows + 0.5)
    table = pd.DataFrame(X[idx].astype("float64"), columns=names)
    table["code"] = labels.ravel()[idx].astype("int32")
    gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(xs, ys), crs="EPSG:32633").to_file(
        path, driver="GPKG"
    )


def _run(cmd: list[str]) -> float:
    env = dict(
        os.environ, ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(THREADS), OTB_MAX_RAM_HINT="2048"
    )
    seconds, res = timed(lambda: subprocess.run(cmd, env=env, capture_output=True, text=True))
    if res.returncode:
        raise RuntimeError(f"{cmd[0]} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return seconds


def run_otb(
    features: Path, points: Path, names: list[str], work: Path, seed: int
) -> dict[str, float]:
    model = work / "otb_rf.model"
    t_fit = _run(
        [
            "otbcli_TrainVectorClassifier",
            "-io.vd", str(points),
            "-io.out", str(model),
            "-cfield", "code",
            "-classifier", "rf",
            "-classifier.rf.nbtrees", str(RF["n_estimators"]),
            "-classifier.rf.max", str(RF["max_depth"]),
            "-classifier.rf.min", str(RF["min_samples_split"]),
            "-rand", str(seed),
            "-feat", *names,
        ]
    )  # fmt: skip
    out = work / "otb_map.tif"
    t_map = _run(
        [
            "otbcli_ImageClassifier",
            "-in", str(features),
            "-model", str(model),
            "-out", str(out), "uint8",
            "-ram", "2048",
        ]
    )  # fmt: skip
    return {"fit_s": t_fit, "map_s": t_map, "map": str(out)}


def run_ours(features: Path, smp, work: Path, seed: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import dask
    import rioxarray
    from odc.geo.xr import assign_crs

    from mus_lab import classify
    from mus_lab._io import write_cog

    t0 = time.perf_counter()
    model = classify.train(smp, "rf", params=dict(RF), validation=smp, seed=seed)
    t_fit = time.perf_counter() - t0
    model.estimators[0].params["n_jobs"] = 1  # inside dask, one thread per task
    out = work / "ours_map.tif"
    t0 = time.perf_counter()
    cube = rioxarray.open_rasterio(features, chunks={"band": -1, "x": 512, "y": 512})
    cube = cube.rename(band="feature").assign_coords(feature=list(smp.features))
    cube = assign_crs(cube, "EPSG:32633")
    res = classify.predict(cube, model)
    with dask.config.set(scheduler="threads", num_workers=THREADS):
        write_cog(res.classification, out, nodata=0)
    return {"fit_s": t_fit, "map_s": time.perf_counter() - t0, "map": str(out)}


def score(path: str, labels: np.ndarray, valid_idx: np.ndarray) -> dict[str, float]:
    import rasterio
    from sklearn.metrics import accuracy_score, cohen_kappa_score

    with rasterio.open(path) as src:
        produced = src.read(1).ravel()[valid_idx]
    truth = labels.ravel()[valid_idx]
    return {
        "overall_accuracy": round(float(accuracy_score(truth, produced)), 4),
        "kappa": round(float(cohen_kappa_score(truth, produced)), 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--workdir", type=Path, default=Path("bench_otb_work"))
    parser.add_argument("--json", type=Path, default=Path("bench_otb.json"))
    parser.add_argument("--seeds", type=int, default=3, help="RF seeds per engine")
    args = parser.parse_args()
    if shutil.which("otbcli_ImageClassifier") is None:
        print("otbcli_ImageClassifier not found: apt-get install otb-bin", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    n = args.size
    X, labels = make_features(n, 30, 10, seed=0)
    names = [f"f{i}" for i in range(X.shape[1])]
    rng = np.random.default_rng(0)
    parcels = _parcels(n)
    ids = np.unique(parcels)
    train_ids = rng.choice(ids, ids.size // 2, replace=False)
    in_train = np.isin(parcels, train_ids)
    train_idx = np.sort(rng.choice(np.flatnonzero(in_train), N_TRAIN, replace=False))
    valid_idx = np.flatnonzero(~in_train)
    features = args.workdir / "features.tif"
    points = args.workdir / "train_points.gpkg"
    write_features(X, n, features)
    write_training_points(X, labels, train_idx, names, points)
    smp = samples_at(X, labels, train_idx, names)
    del X
    pixels = n * n
    runs: dict[str, list[dict[str, float]]] = {"otb": [], "ours": []}
    for seed in range(args.seeds):  # alternate the engines so that load drifts hit both
        otb = run_otb(features, points, names, args.workdir, seed)
        runs["otb"].append({**otb, **score(otb["map"], labels, valid_idx)})
        ours = run_ours(features, smp, args.workdir, seed)
        runs["ours"].append({**ours, **score(ours["map"], labels, valid_idx)})

    def summary(rows: list[dict[str, float]]) -> dict[str, float]:
        out = {k: float(np.mean([r[k] for r in rows])) for k in ("fit_s", "map_s")}
        for k in ("overall_accuracy", "kappa"):
            out[k] = float(np.mean([r[k] for r in rows]))
            out[f"{k}_sd"] = float(np.std([r[k] for r in rows]))
        out["px_s"] = pixels / out["map_s"]
        return out

    report = {
        "size": n,
        "pixels": pixels,
        "features": len(names),
        "training_pixels": int(train_idx.size),
        "validation_pixels": int(valid_idx.size),
        "threads": THREADS,
        "rf": RF,
        "seeds": args.seeds,
        "otb": summary(runs["otb"]),
        "ours": summary(runs["ours"]),
        "runs": runs,
        "load_average": os.getloadavg(),
    }
    report["speed_ratio_ours_over_otb"] = report["ours"]["px_s"] / report["otb"]["px_s"]
    write_report(report, args.json, echo=False)
    print(
        f"RF, 100 trees, {n} x {n} px x {len(names)} features, {THREADS} threads, "
        f"mean of {args.seeds} seeds (sd)"
    )
    print(f"{'engine':<8}{'fit s':>8}{'map s':>8}{'px/s':>10}{'OA':>16}{'kappa':>16}")
    for k in ("otb", "ours"):
        r = report[k]
        print(
            f"{k:<8}{r['fit_s']:>8.1f}{r['map_s']:>8.1f}{r['px_s']:>10.0f}"
            f"{r['overall_accuracy']:>9.4f} ({r['overall_accuracy_sd']:.4f})"
            f"{r['kappa']:>9.4f} ({r['kappa_sd']:.4f})"
        )
    print(f"ours / OTB speed: {report['speed_ratio_ours_over_otb']:.2f}x")
    print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
