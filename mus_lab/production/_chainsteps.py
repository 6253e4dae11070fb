"""The stage step kinds of production chains: ARD, fusion and flood, tile by tile.

``ard.s2``
    Sentinel-2 surface reflectance of the clear observations (SCL mask), one band per
    date and band (``<date>_<band>``), int16 reflectance x 10,000 (-32768 = no data).
``ard.sar``
    Sentinel-1 or RCM backscatter in dB (optionally speckle-filtered), one band per
    date, float32 (NaN = no data).
``fusion.fuse``
    Dempster-Shafer fusion of the land-cover steps it needs (their ``probabilities``,
    which they then write). Each source's masses come from its model's **held-out
    confusion matrix** (``confusion: auto``, the default, when the model records one;
    ``held-out`` requires it; ``none`` never): discounted per class by its precision
    (``reliability: auto`` or ``precision``; ``accuracy``; a number) with compound sets for
    the pairs it confuses (``compound_threshold``, default 0.1); a source without a matrix
    is discounted by 0.9 (or the number given). The matrices and reliabilities used are in
    the tasks' parameters (``confusions``, ``reliabilities``). Outputs ``fused_class`` and
    ``confidence``; intermediates ``conflict`` and ``masses`` (the combined mass cube)
    when the chain keeps them.
``flood.water``
    Water on every SAR date from one **scene-wide** threshold per date: each tile first
    gives a histogram of its backscatter (0.25 dB bins), the histograms of all tiles are
    summed and thresholded once (Otsu, or HydroSAR's EM), then each tile is mapped with
    that threshold. A tiled run gives the same map as one run over the whole grid. Outputs
    ``water`` (uint8 per date: 1 water, 0 not, 255 no data) and ``flood`` (water on some
    date where the place is not water on most valid dates: 1, else 0, 255 no data).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mus_lab.errors import ChainError, StepError
from mus_lab.production._tilesteps import StepKind, TileTask, register_step

__all__: list[str] = []

_DB_LOW, _DB_HIGH, _DB_BIN = -40.0, 10.0, 0.25
_SAR_COLLECTIONS = {"s1": "sentinel-1-grd", "rcm": "rcm-grd"}


def _chunks(task: TileTask) -> int:
    return int(max(task.geobox.shape.yx))


def _date_names(times: Any) -> list[str]:
    stamps = np.asarray(times, dtype="datetime64[s]").astype(str)
    names = [s.replace(":", "")[:15] for s in stamps]
    seen: dict[str, int] = {}
    out = []
    for name in names:  # two acquisitions the same minute keep distinct names
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _ard_s2(task: TileTask) -> Mapping[str, Path]:
    from mus_lab import ard
    from mus_lab._io import write_cog

    found = task.search(task.options["collection"], max_cloud=task.options["max_cloud"])
    bands = tuple(str(b) for b in task.options["bands"])
    ds = ard.prepare_s2(found, geobox=task.geobox, bands=bands, chunks=_chunks(task))
    ds = ds.sortby("time")
    dates = _date_names(ds["time"].values)
    layers = [
        ds[b].isel(time=i).where(ds["valid"].isel(time=i)).drop_vars("time", errors="ignore")
        for i in range(len(dates))
        for b in bands
    ]
    names = [f"{d}_{b}" for d in dates for b in bands]
    stack = xr.concat(layers, dim="band", coords="minimal", compat="override")
    scaled = xr.where(np.isfinite(stack), np.round(stack * 10_000), -32768).astype("int16")
    task.folder.mkdir(parents=True, exist_ok=True)
    return {
        "reflectance": write_cog(
            scaled,
            task.path(),
            nodata=-32768,
            band_names=names,
            tags={"scale": "0.0001", "bands": ",".join(bands)},
        )
    }


def _ard_sar(task: TileTask) -> Mapping[str, Path]:
    from mus_lab import ard
    from mus_lab._io import write_cog

    sensor = str(task.options["sensor"])
    if sensor not in _SAR_COLLECTIONS:
        raise StepError(f"Step {task.step!r}: sensor {sensor!r} is not 's1' or 'rcm'.")
    collection = task.options["collection"] or _SAR_COLLECTIONS[sensor]
    pol = str(task.options["polarisation"]).lower()
    found = task.search(collection)
    prepare = ard.prepare_s1 if sensor == "s1" else ard.prepare_rcm
    ds = prepare(
        found,
        geobox=task.geobox,
        polarisations=(pol,),
        speckle=task.options["speckle"],
        db=True,
        chunks=_chunks(task),
    ).sortby("time")
    db = ds[pol].where(ds["valid"]).astype("float32")
    task.folder.mkdir(parents=True, exist_ok=True)
    return {
        "backscatter": write_cog(
            db,
            task.path(),
            nodata=float("nan"),
            band_names=_date_names(ds["time"].values),
            tags={"units": "dB", "polarisation": pol, "sensor": sensor},
        )
    }


def _fuse(task: TileTask) -> Mapping[str, Path]:
    from mus_lab import fusion
    from mus_lab._io import write_cog

    if len(task.inputs) < 2:
        raise StepError(
            f"Step {task.step!r} (fusion.fuse) fuses the land-cover steps it needs: it needs "
            f"{sorted(task.inputs)}; give it two or more."
        )
    from mus_lab.classify import ConfusionMatrix

    sources = {name: task.read(name, "probabilities") for name in task.inputs}
    matrices = task.options.get("confusions") or {}
    reliabilities = task.options.get("reliabilities") or {}
    confusions = {
        name: ConfusionMatrix(tuple(cm["labels"]), np.asarray(cm["counts"]))
        if (cm := matrices.get(name))
        else None
        for name in sources
    }
    options = fusion.FusionOptions(
        rule=str(task.options["rule"]),
        reliability=tuple(reliabilities.get(name, _DEFAULT_RELIABILITY) for name in sources),
        compound_threshold=task.options["compound_threshold"],
    )
    fused = fusion.fuse(sources, options=options, confusions=confusions)
    task.folder.mkdir(parents=True, exist_ok=True)
    out = {
        "fused_class": write_cog(fused["fused_class"], task.path(), nodata=0),
        "confidence": write_cog(
            fused["confidence"].astype("float32"), task.path("_confidence.tif"), nodata=np.nan
        ),
    }
    if "conflict" in task.keep:
        out["conflict"] = write_cog(
            fused["conflict"].astype("float32"), task.intermediate_path("conflict"), nodata=np.nan
        )
    if "masses" in task.keep:
        masses = fusion.fuse(
            sources, options=options.replace(output="masses"), confusions=confusions
        )
        cube = masses["mass"]
        out["masses"] = write_cog(
            cube.astype("float32"),
            task.intermediate_path("masses"),
            nodata=np.nan,
            band_names=[str(f) for f in cube[cube.dims[0]].values],
        )
    return out


_DEFAULT_RELIABILITY = 0.9
_CONFUSION_MODES = ("auto", "held-out", "none")


def _held_out(model: str) -> dict[str, Any] | None:
    """A saved model's held-out confusion matrix on its classes (None when it has none)."""
    import json

    from mus_lab.classify import ConfusionMatrix

    try:
        meta = json.loads((Path(model) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChainError(
            f"No land-cover model at {model} ({exc}): give the folder that "
            "LandCoverModel.save (or mus-lab landcover train) wrote."
        ) from exc
    doc = ((meta.get("report") or {}).get("validation") or {}).get("confusion")
    if not doc:
        return None
    cm = ConfusionMatrix(tuple(doc["labels"]), np.asarray(doc["counts"]))
    classes = [int(c) for c in meta.get("classes") or cm.labels]
    cm = cm.reorder(classes)  # onto the probability cube's classes (zeros if never seen)
    return {"labels": classes, "counts": cm.counts.astype("int64").tolist()}


def _fuse_resolve(options: dict[str, Any], step: Any, spec: Any) -> dict[str, Any]:
    """The fusion's confusion matrices and per-source reliabilities in this chain."""
    mode, rel = options["confusion"], options["reliability"]
    where = f" in {spec.source}" if getattr(spec, "source", None) else ""
    head = f"Step {step.name!r}{where} (fusion.fuse)"
    if mode not in _CONFUSION_MODES:
        raise ChainError(
            f"{head}: confusion={mode!r}; choose one of {list(_CONFUSION_MODES)} (auto: the "
            "models' held-out confusion matrices when they record one)."
        )
    if not (rel is None or rel in ("auto", "precision", "accuracy")):
        try:
            ok = not isinstance(rel, bool) and 0.0 <= float(rel) <= 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ChainError(
                f"{head}: reliability={rel!r}; choose auto, precision, accuracy, a number in "
                "[0, 1] or null."
            )
    threshold = options["compound_threshold"]
    if threshold is not None and (
        isinstance(threshold, bool | str) or not 0.0 <= float(threshold) <= 1.0
    ):
        raise ChainError(
            f"{head}: compound_threshold={threshold!r}; give a confusion rate in [0, 1] or null."
        )
    from mus_lab import fusion
    from mus_lab.errors import FusionError

    try:
        fusion.FusionOptions(rule=str(options["rule"]))
    except FusionError as exc:
        raise ChainError(f"{head}: {exc}") from exc
    steps = {s.name: s for s in spec.steps}
    confusions: dict[str, Any] = {}
    reliabilities: dict[str, Any] = {}
    for name in step.needs:
        need = steps[name]
        cm = None
        if mode != "none" and need.uses == "landcover.predict":
            cm = _held_out(str(need.options["model"]))
        if cm is None and mode == "held-out":
            raise ChainError(
                f"{head}: the model of {name!r} ({need.options.get('model', need.uses)}) records "
                "no held-out confusion matrix: train it with a validation split "
                "(classify.train keeps one), or set confusion: auto or none."
            )
        if cm is None and rel in ("precision", "accuracy"):
            raise ChainError(
                f"{head}: reliability={rel!r} needs the confusion matrix of {name!r}, which "
                "its model does not record (or confusion: none): give a number, or auto."
            )
        confusions[name] = cm
        if rel == "auto":
            reliabilities[name] = "precision" if cm is not None else _DEFAULT_RELIABILITY
        else:
            reliabilities[name] = rel if rel is None or isinstance(rel, str) else float(rel)
    return {**options, "confusions": confusions, "reliabilities": reliabilities}


def _backscatter(task: TileTask) -> tuple[xr.DataArray, list[str]]:
    import rasterio

    if len(task.inputs) != 1:
        raise StepError(
            f"Step {task.step!r} (flood.water) maps the backscatter of the one ard.sar step it "
            f"needs; it needs {sorted(task.inputs)}."
        )
    need = next(iter(task.inputs))
    db = task.read(need)
    with rasterio.open(next(iter(task.inputs[need].values()))) as src:
        names = [d or str(i + 1) for i, d in enumerate(src.descriptions)]
    return (db if db.ndim == 3 else db.expand_dims(band=[1])), names


def _flood_sample(task: TileTask) -> dict[str, Any]:
    db, names = _backscatter(task)
    edges = np.arange(_DB_LOW, _DB_HIGH + _DB_BIN / 2, _DB_BIN)
    counts = []
    for i in range(db.sizes["band"]):  # one date at a time: memory of one layer
        v = np.asarray(db.isel(band=i).values)
        counts.append(np.histogram(v[np.isfinite(v)], bins=edges)[0].astype(np.int64))
    return {"bands": names, "counts": np.stack(counts)}


def _flood_reduce(samples: list[Any], options: Mapping[str, Any]) -> dict[str, Any]:
    from mus_lab import flood

    bands = samples[0]["bands"]
    if any(s["bands"] != bands for s in samples):
        raise StepError(
            "flood.water: the tiles' backscatter have different dates; run ard.sar with the "
            "same collection and period on every tile."
        )
    total = np.sum([s["counts"] for s in samples], axis=0)  # integer sum: order-free
    method = str(options["method"])
    thresholds = []
    for counts in total:
        if method == "em":
            bins = flood.em_threshold_histogram(counts)
        else:
            bins = flood.otsu_threshold_histogram(counts)
        thresholds.append(None if not np.isfinite(bins) else _DB_LOW + float(bins) * _DB_BIN)
    return {"bands": list(bands), "thresholds_db": thresholds, "method": method}


def _flood_water(task: TileTask) -> Mapping[str, Path]:
    from mus_lab._io import write_cog

    db, _ = _backscatter(task)
    thresholds = task.scene.get("thresholds_db")
    if thresholds is None or len(thresholds) != db.sizes["band"]:
        raise StepError(f"Step {task.step!r}: no scene-wide threshold per date was computed.")
    layers = []
    for i, thr in enumerate(thresholds):
        layer = db.isel(band=i)
        if thr is None:  # no two modes that date: no water map
            layers.append(xr.full_like(layer, 255, dtype="uint8"))
            continue
        water = xr.where(layer < np.float32(thr), 1, 0).astype("uint8")
        layers.append(water.where(np.isfinite(layer), 255).astype("uint8"))
    water = xr.concat(layers, dim="band")
    valid = (water != 255).sum("band")
    wet = (water == 1).sum("band")
    flooded = ((wet > 0) & (2 * wet <= valid)).astype("uint8")
    flooded = flooded.where(valid > 0, 255).astype("uint8")
    task.folder.mkdir(parents=True, exist_ok=True)
    tags = {"thresholds_db": ",".join(str(t) for t in thresholds), "method": task.scene["method"]}
    return {
        "water": write_cog(
            water, task.path("_water.tif"), nodata=255, band_names=task.scene["bands"], tags=tags
        ),
        "flood": write_cog(flooded, task.path(), nodata=255, tags=tags),
    }


register_step(
    StepKind(
        "ard.s2",
        _ard_s2,
        optional={
            "collection": "sentinel-2-l2a",
            "max_cloud": 80,
            "bands": ["blue", "green", "red", "nir", "swir16", "swir22"],
        },
        collections=lambda o: (str(o["collection"]),),
        description="Sentinel-2 clear surface reflectance per date and band (int16 x 10,000).",
    )
)
register_step(
    StepKind(
        "ard.sar",
        _ard_sar,
        optional={"sensor": "s1", "collection": None, "polarisation": "vv", "speckle": None},
        collections=lambda o: (str(o["collection"] or _SAR_COLLECTIONS.get(str(o["sensor"]), "")),),
        description="Sentinel-1 or RCM backscatter in dB per date (speckle filter optional).",
    )
)
register_step(
    StepKind(
        "fusion.fuse",
        _fuse,
        optional={
            "rule": "dempster",
            "confusion": "auto",
            "reliability": "auto",
            "compound_threshold": 0.1,
        },
        description=(
            "Dempster-Shafer fusion of the land-cover steps it needs (their probabilities), "
            "masses from the models' held-out confusion matrices."
        ),
        intermediates=("conflict", "masses"),
        reads=("probabilities",),
        resolve=_fuse_resolve,
    )
)
register_step(
    StepKind(
        "flood.water",
        _flood_water,
        optional={"method": "otsu"},
        description="Water per SAR date and flood extent, one scene-wide threshold per date.",
        sample=_flood_sample,
        reduce=_flood_reduce,
    )
)
