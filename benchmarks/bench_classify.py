"""Land-cover prediction throughput: ``classify.predict`` over a lazy cube against the floor.

On a generated feature cube (default 2048 x 2048 pixels x 30 dates x 10 bands = 300 features,
six classes with distinct temporal profiles plus enough noise for realistic trees: OA about
0.85, trees about 24 deep), in one run, with dask's threaded
scheduler on 2 threads:

1. Random forest as IOTA² (100 trees, max depth 25, min 5 samples to split) trained on 30,000
   pixels; prediction of the class map, confidence and probabilities with
   ``classify.predict`` (chunks of 512 x 512, computed together) against the **floor**:
   scikit-learn's ``predict_proba`` (``n_jobs=2``) on the same features already flattened in
   memory, ``(pixels, 300)`` float32. Also ``RandomForest.predict_proba`` (vote counting) on
   that in-memory array, to separate the model from the chunking.
2. TempCNN (Pelletier et al. 2019; 2 epochs, only for timing) over a ``--cnn-size`` square of
   the cube with ``classify.predict`` against keras ``Model.predict`` on the same standardised
   in-memory array (the floor).
   With ``--ltae``, the same for L-TAE (Garnot & Landrieu 2020).

Usage: ``python benchmarks/bench_classify.py [--size 2048] [--dates 30] [--bands 10]
[--cnn-size 512] [--workdir DIR] [--no-tempcnn] [--ltae]``
"""

from __future__ import annotations

import sys
import time

import dask
import numpy as np
from _common import arg_parser, machine, print_table, timed, write_report

THREADS = 2
CHUNK = 512
N_CLASSES = 6
N_TRAIN = 30_000
NOISE = 0.6  # per-feature noise around the class profiles: OA ~0.85, trees ~24 deep (realistic)


def _class_map(size: int, seed: int) -> np.ndarray:
    """Smooth patches of six classes (parcels of ~40 px)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, N_CLASSES, (size // 40 + 2, size // 40 + 2))
    fine = ndimage.zoom(coarse, 40, order=0)[:size, :size]
    return (fine + 1).astype("uint8")


def make_features(
    size: int, dates: int, bands: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (pixels, bands x dates) float32 C-contiguous (variable-major) and the class map."""
    rng = np.random.default_rng(seed)
    labels = _class_map(size, seed)
    t = np.linspace(0, 2 * np.pi, dates, dtype="float32")
    phase = rng.uniform(0, 2 * np.pi, (N_CLASSES, bands)).astype("float32")
    amp = rng.uniform(0.05, 0.3, (N_CLASSES, bands)).astype("float32")
    base = rng.uniform(0.05, 0.5, (N_CLASSES, bands)).astype("float32")
    profiles = base[..., None] + amp[..., None] * np.sin(t[None, None] + phase[..., None])
    profiles = profiles.reshape(N_CLASSES, bands * dates)  # variable-major
    n = size * size
    X = np.empty((n, bands * dates), dtype="float32")
    flat = labels.ravel()
    step = 65_536
    for s in range(0, n, step):
        e = min(n, s + step)
        noise = rng.normal(0, NOISE, (e - s, bands * dates)).astype("float32")
        X[s:e] = profiles[flat[s:e] - 1] + noise
    return X, labels


def _cube(X: np.ndarray, size: int, names: list[str]):  # type: ignore[no-untyped-def]
    import dask.array as dsa
    import xarray as xr
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import xr_coords

    gb = GeoBox.from_bbox(
        (500_000, 5_000_000 - 10 * size, 500_000 + 10 * size, 5_000_000),
        "EPSG:32633",
        resolution=10,
    )
    view = X.T.reshape(len(names), size, size)  # no copy: the same memory as the floor's array
    data = dsa.from_array(view, chunks=(-1, CHUNK, CHUNK))
    coords = dict(xr_coords(gb, crs_coord_name="spatial_ref"))
    return xr.DataArray(data, dims=("feature", "y", "x"), coords=coords).assign_coords(
        feature=names
    )


def samples_at(X: np.ndarray, labels: np.ndarray, idx: np.ndarray, names: list[str]):  # type: ignore[no-untyped-def]
    """``Samples`` of the pixels ``idx`` (flat indices); one "polygon" per 40 px parcel."""
    from mus_lab.classify import Samples

    size = labels.shape[0]
    rows, cols = np.divmod(idx, size)
    parcel = (rows // 40) * (size // 40 + 2) + cols // 40
    return Samples(
        X=X[idx],
        y=labels.ravel()[idx].astype("int64"),
        polygon=parcel.astype("int64"),
        region=np.zeros(idx.size, "int64"),
        row=rows,
        col=cols,
        features=tuple(names),
        classes=tuple(range(1, N_CLASSES + 1)),
        class_names={c: f"class {c}" for c in range(1, N_CLASSES + 1)},
        crs="EPSG:32633",
        resolution=(10.0, 10.0),
    )


def _samples(X: np.ndarray, labels: np.ndarray, names: list[str], seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(X.shape[0], min(N_TRAIN, X.shape[0] // 2), replace=False))
    return samples_at(X, labels, idx, names)


def rf_throughput(X: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    from mus_lab import classify

    size = labels.shape[0]
    smp = _samples(X, labels, names, seed=1)
    t_fit, model = timed(lambda: classify.train(smp, "rf", params={"n_estimators": 100}, seed=0))
    est = model.estimators[0]
    n = X.shape[0]
    sk = est._rf
    sk.n_jobs = THREADS
    t_floor, proba_sk = timed(lambda: sk.predict_proba(X))
    del proba_sk
    depth = float(np.mean([e.tree_.max_depth for e in sk.estimators_]))
    est.params["n_jobs"] = THREADS
    t_votes, votes = timed(lambda: est.predict_proba(X))
    est.params["n_jobs"] = 1  # inside dask, each task runs one thread
    cube = _cube(X, size, names)

    def ours():  # type: ignore[no-untyped-def]
        res = classify.predict(cube, model)
        with dask.config.set(scheduler="threads", num_workers=THREADS):
            return dask.compute(res.classification, res.confidence, res.probability)

    t_ours, out = timed(ours)
    cls, conf = out[0].values, out[1].values
    agree = float((cls.ravel() == np.asarray(model.classes)[np.argmax(votes, 1)]).mean())
    acc = float((cls == labels).mean())
    return {
        "pixels": n,
        "features": len(names),
        "fit_seconds": round(t_fit, 1),
        "mean_tree_depth": round(depth, 1),
        "validation_oa": model.metadata.report["validation"]["overall_accuracy"],
        "floor_sklearn_predict_proba_px_s": round(n / t_floor),
        "in_memory_vote_counting_px_s": round(n / t_votes),
        "ours_predict_dask_px_s": round(n / t_ours),
        "ratio_ours_over_floor": round(t_floor / t_ours, 3),
        "ratio_votes_over_floor": round(t_floor / t_votes, 3),
        "map_agrees_with_in_memory_votes": agree,
        "map_accuracy_vs_truth": round(acc, 4),
        "mean_confidence": round(float(conf.mean()), 1),
    }


def tempcnn_throughput(
    X: np.ndarray, labels: np.ndarray, names: list[str], cnn_size: int, kind: str = "tempcnn"
) -> dict:
    from mus_lab import classify

    size = labels.shape[0]
    sub = labels[:cnn_size, :cnn_size]
    rows = np.arange(cnn_size)[:, None] * size + np.arange(cnn_size)[None, :]
    Xs = np.ascontiguousarray(X[rows.ravel()])
    smp = _samples(X, labels, names, seed=2)
    t_fit, model = timed(
        lambda: classify.train(smp, kind, params={"epochs": 2, "batch_size": 256}, seed=0)
    )
    est = model.estimators[0]
    x3 = est._to_3d(Xs)
    net = est._model
    net.predict(x3[:1024], batch_size=16384, verbose=0)  # warm-up (graph tracing)
    t_floor, _ = timed(lambda: net.predict(x3, batch_size=16384, verbose=0))
    cube = _cube(Xs, cnn_size, names)

    def ours():  # type: ignore[no-untyped-def]
        res = classify.predict(cube, model)
        with dask.config.set(scheduler="threads", num_workers=THREADS):
            return dask.compute(res.classification, res.probability)

    t_ours, out = timed(ours)
    cls = out[0].values
    n = Xs.shape[0]
    return {
        "pixels": n,
        "fit_seconds_2_epochs": round(t_fit, 1),
        "floor_keras_predict_px_s": round(n / t_floor),
        "ours_predict_dask_px_s": round(n / t_ours),
        "ratio_ours_over_floor": round(t_floor / t_ours, 3),
        "map_accuracy_vs_truth": round(float((cls == sub).mean()), 4),
    }


def main() -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--dates", type=int, default=30)
    parser.add_argument("--bands", type=int, default=10)
    parser.add_argument("--cnn-size", type=int, default=512)
    parser.add_argument("--no-tempcnn", action="store_true")
    parser.add_argument("--ltae", action="store_true", help="also L-TAE (same measurement)")
    args = parser.parse_args()
    from mus_lab.classify import feature_names

    t_start = time.perf_counter()
    dates = np.datetime64("2022-01-01") + 10 * np.arange(args.dates).astype("timedelta64[D]")
    names = feature_names([f"b{i:02d}" for i in range(args.bands)], dates)
    t_gen, (X, labels) = timed(lambda: make_features(args.size, args.dates, args.bands))
    result: dict = {
        "machine": machine(dask_scheduler="threads", threads=THREADS),
        "cube": f"{args.size} x {args.size} px x {args.dates} dates x {args.bands} bands",
        "chunks": f"{CHUNK} x {CHUNK}",
        "noise_sigma": NOISE,
        "generation_seconds": round(t_gen, 1),
        "random_forest": rf_throughput(X, labels, names),
    }
    if not args.no_tempcnn:
        result["tempcnn"] = tempcnn_throughput(X, labels, names, min(args.cnn_size, args.size))
    if args.ltae:
        result["ltae"] = tempcnn_throughput(
            X, labels, names, min(args.cnn_size, args.size), kind="ltae"
        )
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    rf = result["random_forest"]
    rows = [
        ("RF floor: sklearn predict_proba in memory", rf["floor_sklearn_predict_proba_px_s"], 1.0),
        (
            "RF vote counting in memory",
            rf["in_memory_vote_counting_px_s"],
            rf["ratio_votes_over_floor"],
        ),
        ("RF classify.predict (dask)", rf["ours_predict_dask_px_s"], rf["ratio_ours_over_floor"]),
    ]
    for key, title in (("tempcnn", "TempCNN"), ("ltae", "L-TAE")):
        if key not in result:
            continue
        cnn = result[key]
        rows += [
            (f"{title} floor: keras predict in memory", cnn["floor_keras_predict_px_s"], 1.0),
            (
                f"{title} classify.predict (dask)",
                cnn["ours_predict_dask_px_s"],
                cnn["ratio_ours_over_floor"],
            ),
        ]
    print_table([("case", "<45"), ("pixels/s", ">13,"), ("x floor", ">9.3f")], rows)
    write_report(result, args.workdir / "bench_classify.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
