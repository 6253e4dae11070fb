"""The ``self_trained`` voter's weight in the consensus, chosen on some scenario seeds and
reported on others (held out).

For each seed, the sample scenario (128 px, the tests' settings: ``Realism.off()``, S1 every
12 days, RCM every 24, S2 every 20, Dec 2021-Jul 2022) is mapped once by
``recipes.run_risk`` with every SAR method (threshold, change, region, self_trained) and
the optical vote; the evidence of each source is kept. The consensus is then re-voted
offline with each candidate weight (``flood.weighted_majority_rule``, then the same
Dempster-Shafer fusion with optical) and the flood products rebuilt by ``flood.assess``
(same land cover, HAND, slope), so the fitted classifiers are the same for every weight;
weight 1 reproduces ``run_risk``'s own map (checked). Scores: CSI of the flood class
against ``flood-truth``, all SAR dates pooled (as ``tests/flood/test_scenario.py``).

The weight is chosen on ``--tune`` seeds (best mean CSI; ties to the smallest weight) and
reported on ``--report`` seeds, which the choice never saw.

Usage: ``python benchmarks/select_selftrain_weight.py [--tune 1 2] [--report 3 4 5]
[--weights 1 1.5 2 2.5 3 4] [--workdir DIR] [--json FILE]``. Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import write_report

from mus_lab import catalog, cube, flood, recipes
from mus_lab.contracts import COLLECTIONS
from mus_lab.recipes._flood import _terrain
from mus_lab.testing import separable_scenario


def scenario(workdir: Path, seed: int) -> Path:
    root = workdir / f"sc{seed}"
    if not root.exists():
        separable_scenario(root, size=128, seed=seed)
    return next(root.rglob("catalog.json"))


def evaluate(cat: Path, weights: list[float], work: Path) -> dict[str, Any]:
    """CSI per weight (and without the voter, and per source) on one scenario."""
    opts = flood.MappingOptions(methods=flood.ALL_METHODS)
    run = recipes.run_risk(
        cat,
        landcover="landcover-truth",
        options=opts,
        extent_collection=None,
        risk_collection=None,
        workdir=work,
    )
    water = run.water.compute()
    grid = cube.geobox_of(water)
    items = catalog.search(cat, collections="flood-truth")
    truth_raw = cube.load(items, ("flood",), geobox=grid).flood
    truth = flood.align_truth(truth_raw, water.time.values).compute()
    lc_items = catalog.search(cat, collections="landcover-truth")
    lc = cube.load(lc_items[-1:], ("landcover",), geobox=grid, resampling="nearest")
    lc = lc.landcover.isel(time=0, drop=True).astype(np.uint8)
    hand, slope, _ = _terrain(COLLECTIONS["dem"], cat, grid, None)
    ev = water["evidence"]

    def scores(evidence: Any, rule: Any) -> dict[str, float]:
        out = flood.consensus(evidence, rule=rule)
        voted = water.assign(water=out["water"], likelihood=out["likelihood"])
        res = flood.assess([voted], lc, hand=hand, slope=slope, options=opts, workdir=work)
        s = flood.flood_scores(res.extent["flood"].compute(), truth)
        return {k: float(s[k]) for k in ("csi", "precision", "recall")}

    def fused(sar_rule: Any) -> Any:
        return flood.with_optical(
            sar_rule,
            sar_reliability=opts.sar_reliability,
            optical_reliability=opts.optical_reliability,
            fusion_rule=opts.optical_fusion_rule,
        )

    own = flood.flood_scores(run.extent["flood"].compute(), truth)["csi"]
    table = {
        f"{w:g}": scores(ev, fused(flood.weighted_majority_rule({"self_trained": w})))
        for w in weights
    }
    without = ev.sel(source=[s for s in ev.source.values if s != "self_trained"])
    sar = ev.sel(source=[s for s in ev.source.values if s != "optical"])
    sar_without = without.sel(source=[s for s in without.source.values if s != "optical"])
    sar_only = {
        f"{w:g}": scores(sar, flood.weighted_majority_rule({"self_trained": w}))["csi"]
        for w in weights
    }
    sar_only["without_voter"] = scores(sar_without, flood.majority_rule)["csi"]
    by_source = run.by_source().compute()
    per_source = {
        str(s): float(flood.flood_scores(by_source.sel(source=s), truth)["csi"])
        for s in by_source.source.values
    }
    run.cleanup()
    return {
        "run_risk_csi_weight_1": float(own),
        "weights": table,
        "without_voter": scores(without, fused(flood.majority_rule)),
        "sar_only_csi": sar_only,
        "per_source_csi": per_source,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tune", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--report", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--weights", type=float, nargs="+", default=[1, 1.5, 2, 2.5, 3, 4])
    parser.add_argument("--workdir", type=Path, default=Path("selftrain_weight_work"))
    parser.add_argument("--json", type=Path, default=Path("selftrain_weight.json"))
    args = parser.parse_args()
    if set(args.tune) & set(args.report):
        parser.error("--tune and --report seeds must differ (held-out protocol)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, Any]] = {}
    for seed in [*args.tune, *args.report]:
        t0 = time.perf_counter()
        cat = scenario(args.workdir, seed)
        results[seed] = evaluate(cat, args.weights, args.workdir / f"run{seed}")
        r = results[seed]
        print(
            f"seed {seed} ({time.perf_counter() - t0:.0f} s): without voter "
            f"{r['without_voter']['csi']:.3f}; "
            + ", ".join(f"w={w}: {v['csi']:.3f}" for w, v in r["weights"].items())
            + f"; per source {', '.join(f'{k} {v:.3f}' for k, v in r['per_source_csi'].items())}"
            + f"; run_risk (w=1) {r['run_risk_csi_weight_1']:.3f}; SAR only (no optical): "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["sar_only_csi"].items()),
            flush=True,
        )
    keys = [f"{w:g}" for w in args.weights]
    tune_mean = {
        k: float(np.mean([results[s]["weights"][k]["csi"] for s in args.tune])) for k in keys
    }
    best = max(tune_mean.values())
    chosen = next(k for k in keys if tune_mean[k] >= best - 1e-12)
    held: dict[str, Any] = {
        "chosen_weight": float(chosen),
        "held_out_csi": {s: results[s]["weights"][chosen]["csi"] for s in args.report},
        "held_out_csi_weight_1": {s: results[s]["weights"]["1"]["csi"] for s in args.report}
        if "1" in keys
        else None,
        "held_out_csi_without_voter": {s: results[s]["without_voter"]["csi"] for s in args.report},
        "held_out_csi_voter_alone": {
            s: results[s]["per_source_csi"].get("self_trained") for s in args.report
        },
    }
    report = {
        "tune_seeds": args.tune,
        "report_seeds": args.report,
        "tune_mean_csi": tune_mean,
        **held,
        "results": results,
        "load_average": os.getloadavg(),
    }
    write_report(report, args.json, echo=False)
    print(f"mean CSI on the tuning seeds {args.tune}: {tune_mean}; chosen weight {chosen}")
    for s in args.report:
        print(
            f"held-out seed {s}: without voter {held['held_out_csi_without_voter'][s]:.3f}, "
            f"w=1 {results[s]['weights'].get('1', {}).get('csi', float('nan')):.3f}, "
            f"w={chosen} {held['held_out_csi'][s]:.3f}, voter alone "
            f"{held['held_out_csi_voter_alone'][s]:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
