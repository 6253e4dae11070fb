"""Task seconds of the land-cover steps of a chain: features from the chain's ARD files
(the steps `need` ard.s2 / ard.sar) against features rebuilt from the catalog (no ARD need).

The two chains are the same but for the land-cover steps' `needs`; runs alternate (A, B, A,
B ...) on one in-process cluster of one thread, each in a fresh output folder, so that both
see the same load. Prints the median task seconds per step and the ratio, with the load
average. Docs: docs/design/0012-production-chains.md (land cover from the chain's ARD).

    python benchmarks/bench_chain_ard_reuse.py --size 128 --tile 69 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

PERIOD = "2022-03-01/2022-07-31"


def _models(scenario: Any, work: Path) -> None:
    from mus_lab import classify, recipes

    for name, kw in (
        ("optical", {"sensors": "optical", "optical_variables": ("ndvi",)}),
        ("radar", {"sensors": "radar", "speckle": None, "radar_sources": ("sentinel-1-grd",)}),
    ):
        feats, recipe, _ = recipes.features_from_catalog(
            scenario.catalog_path, every_days=60, datetime=PERIOD, **kw
        )
        samples = classify.extract_samples(feats, scenario.polygons, layer="reference")
        model = classify.train(samples, "rf", params={"n_estimators": 8}, recipe=recipe)
        model.save(work / name, overwrite=True)


def _chain(scenario: Any, work: Path, tile: int, out: str, *, ard: bool) -> dict[str, Any]:
    return {
        "chain": out,
        "catalog": str(scenario.catalog_path),
        "output": str(work / out),
        "period": PERIOD,
        "area": {"bbox": list(scenario.bbox), "tile": tile},
        "steps": {
            "s2": {"uses": "ard.s2", "options": {"bands": ["red", "nir"], "max_cloud": 100}},
            "s1": {"uses": "ard.sar", "options": {"sensor": "s1"}},
            "s1vh": {"uses": "ard.sar", "options": {"sensor": "s1", "polarisation": "vh"}},
            "optical": {
                "uses": "landcover.predict",
                "needs": ["s2"] if ard else [],
                "options": {"model": str(work / "optical")},
            },
            "radar": {
                "uses": "landcover.predict",
                "needs": ["s1", "s1vh"] if ard else [],
                "options": {"model": str(work / "radar")},
            },
        },
    }


def main() -> None:
    from distributed import Client

    from mus_lab import production
    from mus_lab.testing import separable_scenario

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--tile", type=int, default=69)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        scenario = separable_scenario(work / "sc", size=args.size, seed=3)
        _models(scenario, work)
        seconds: dict[tuple[str, str], list[float]] = {}
        loads = [os.getloadavg()[0]]
        with Client(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
        ) as client:
            for i in range(args.repeats):
                for label, ard in (("ard", True), ("catalog", False)):
                    chain = _chain(scenario, work, args.tile, f"{label}-{i}", ard=ard)
                    spec = production.load_chain(chain)
                    report = production.run_tiles(spec, client=client, log=lambda line: None)
                    assert report.ok, report.table()
                    for step in ("optical", "radar"):
                        total = sum(t.seconds or 0.0 for t in report.tasks if t.step == step)
                        seconds.setdefault((label, step), []).append(total)
                loads.append(os.getloadavg()[0])
        tiles = len(production.load_chain(_chain(scenario, work, args.tile, "x", ard=True)).tiles())
    print(
        f"scene {args.size} px, {tiles} tiles of {args.tile} px, {args.repeats} alternated runs "
        f"each; load average (1 min) {min(loads):.1f}-{max(loads):.1f}"
    )
    for step in ("optical", "radar"):
        a = statistics.median(seconds[("ard", step)])
        c = statistics.median(seconds[("catalog", step)])
        print(
            f"{step:8s} task seconds (sum over tiles, median): from ARD {a:.2f} s, "
            f"from catalog {c:.2f} s, ratio ARD/catalog {a / c:.2f}"
        )


if __name__ == "__main__":
    main()
