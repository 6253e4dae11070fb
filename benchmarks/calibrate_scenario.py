"""Calibration of the sample scenario's realism: RF optical, radar and fused OA per seed.

Generates the demo scenario (``mus_lab.sample.generate``, default 256 px, the demo's period and
revisits) for each seed, then runs what notebooks 03 and 04 run, with the project's own functions:
``recipes.features_from_catalog`` (optical, radar), ``classify.extract_samples`` on the reference
polygons, ``classify.train`` (random forest, 30 trees as the quick demo, split 0.5 by polygon,
seed 0), ``classify.predict`` + ``classify.write_landcover`` into the scenario's catalog, then
``recipes.sources_from_catalog``, ``fusion.split_held_out`` and ``fusion.evaluate_fusion``
(probabilities, Dempster, max belief) on the evaluation half of the held-out polygons.

Printed per seed: validation OA / kappa of the optical and radar forests (held-out polygons,
reference labels as published, label noise included), the same against the clean truth raster,
and the OA of optical, radar and fused maps on the fusion's evaluation polygons with the gain
in points. docs/design/0015-scenario-realism.md has the figures of the calibrated defaults.

Usage: ``python benchmarks/calibrate_scenario.py [--size 256] [--seeds 42 0 1] [--trees 30]
[--workdir DIR] [--clean]`` (``--clean``: ``Realism.off()``, the scenario without the
confusability knobs, for the "before" figures).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import rioxarray


def run_seed(
    seed: int, size: int, trees: int, workdir: Path, clean: bool, verbose: bool = False
) -> dict[str, float]:
    """Generate one scenario and return its figures."""
    from mus_lab import classify, fusion, recipes, sample

    t0 = time.perf_counter()
    if hasattr(sample, "Realism"):
        realism = sample.Realism.off() if clean else sample.Realism()
        scn = sample.generate(workdir / f"scn{seed}", size=size, seed=seed, realism=realism)
    else:  # a generator older than the realism knobs
        scn = sample.generate(workdir / f"scn{seed}", size=size, seed=seed)
    t_gen = time.perf_counter() - t0
    out: dict[str, float] = {"generate_s": t_gen}
    truth = rioxarray.open_rasterio(scn.landcover).squeeze("band", drop=True)
    for sensors in ("optical", "radar"):
        feats, recipe, items = recipes.features_from_catalog(scn.catalog_path, sensors=sensors)
        feats = dask.persist(feats)[0]
        samples = classify.extract_samples(feats, scn.polygons, layer="reference")
        model = classify.train(
            samples, "rf", params={"n_estimators": trees}, train_ratio=0.5, seed=0, recipe=recipe
        )
        val = model.metadata.report["validation"]
        out[f"{sensors}_oa"] = val["overall_accuracy"]
        out[f"{sensors}_kappa"] = val["kappa"]
        result = classify.predict(feats, model).compute()
        acc = classify.assess(
            result.classification,
            scn.polygons,
            layer="reference",
            polygon_ids=model.metadata.report["validation_polygons"],
        )
        clean_acc = acc
        if "code_true" in gpd.read_file(scn.polygons, layer="reference", rows=1).columns:
            clean_acc = classify.assess(
                result.classification,
                scn.polygons,
                layer="reference",
                label="code_true",
                polygon_ids=model.metadata.report["validation_polygons"],
            )
        out[f"{sensors}_oa_clean"] = clean_acc.overall_accuracy
        if verbose:
            print(f"seed {seed} {sensors}: confusion on the validation polygons (rows: truth)")
            print(clean_acc.confusion.counts)
        out[f"{sensors}_wall_to_wall"] = float(
            (result.classification.values == truth.values)[truth.values > 0].mean()
        )
        classify.write_landcover(
            result,
            scn.catalog_path.parent,
            classify.LANDCOVER_COLLECTIONS[sensors],
            model=model,
            accuracy=acc,
            sources=items[:1],
            overwrite=True,
        )
    sources = recipes.sources_from_catalog(scn.catalog_path)
    calibration, evaluation = fusion.split_held_out(scn.polygons, sources)
    cms = [s.confusion_on(calibration) for s in sources]
    ev = fusion.evaluate_fusion(
        {s.name: s.probability for s in sources},
        cms,
        evaluation,
        options=fusion.FusionOptions(rule="dempster", decision="bel"),
    )
    if verbose:
        ref = evaluation.values
        ok = ref > 0
        right = {s.name: s.classification.values[ok] == ref[ok] for s in sources}
        o, r = right["optical"], right["radar"]
        print(
            f"seed {seed} evaluation pixels: both right {np.mean(o & r):.3f}, only optical "
            f"{np.mean(o & ~r):.3f}, only radar {np.mean(~o & r):.3f}, both wrong "
            f"{np.mean(~o & ~r):.3f}; classes {np.unique(ref[ok], return_counts=True)}"
        )
    for name, oa in ev.overall_accuracy.items():
        out[f"eval_{name}"] = oa
    out["gain_points"] = 100 * ev.gain
    out["total_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    """Parse the arguments, run every seed and print one line per seed and the means."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1])
    ap.add_argument("--trees", type=int, default=30)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--clean", action="store_true", help="Realism.off(): the 'before' figures")
    ap.add_argument("--verbose", action="store_true", help="print the confusion matrices")
    args = ap.parse_args()
    dask.config.set(scheduler="threads", num_workers=2)
    keys = (
        "optical_oa",
        "radar_oa",
        "optical_oa_clean",
        "radar_oa_clean",
        "optical_wall_to_wall",
        "radar_wall_to_wall",
        "eval_optical",
        "eval_radar",
        "eval_fused",
        "gain_points",
        "generate_s",
        "total_s",
    )
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for seed in args.seeds:
            fig = run_seed(seed, args.size, args.trees, Path(tmp), args.clean, args.verbose)
            rows.append([fig[k] for k in keys])
            print(
                f"seed {seed}: " + " ".join(f"{k}={fig[k]:.3f}" for k in keys),
                flush=True,
            )
    mean = np.mean(np.array(rows), axis=0)
    print("mean: " + " ".join(f"{k}={v:.3f}" for k, v in zip(keys, mean, strict=True)))


if __name__ == "__main__":
    main()
